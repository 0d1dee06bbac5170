package api

import "time"

// AuthToken is a bearer API token's record (/1.0/auth/tokens, extension
// hangar_api_tokens). Its secret is never shown after creation.
type AuthToken struct {
	Name string `json:"name" yaml:"name"`
	// Project the token acts in; "" for an admin token, which acts on the
	// whole server.
	Project string `json:"project" yaml:"project"`
	// Role is "admin", "operator" or "viewer".
	Role      string    `json:"role" yaml:"role"`
	CreatedAt time.Time `json:"created_at" yaml:"created_at"`
	// ExpiresAt is the zero time for a token that never expires.
	ExpiresAt time.Time `json:"expires_at" yaml:"expires_at"`
}

// AuthTokensPost creates a token. Expiry is as core.remote_token_expiry
// ("30d", "1H 30M"); "" never expires.
type AuthTokensPost struct {
	Name    string `json:"name" yaml:"name"`
	Project string `json:"project" yaml:"project"`
	Role    string `json:"role" yaml:"role"`
	Expiry  string `json:"expiry" yaml:"expiry"`
}

// AuthTokenCreated is the answer to AuthTokensPost: the record, and the
// token to send as "Authorization: Bearer TOKEN", shown this once.
type AuthTokenCreated struct {
	AuthToken `yaml:",inline"`
	Token     string `json:"token" yaml:"token"`
}
