package api

import "time"

// User is a local user (/1.0/users, extension hangar_users): a name and
// a password that log in to the dialects with logins (the virt JSON-RPC
// auth.login, the /v/ user login). What a user may do is what the auth
// groups naming it (identities "user": [NAME]) grant. Its password is
// write-only: no answer ever carries it or its hash.
type User struct {
	Name        string    `json:"name" yaml:"name"`
	Description string    `json:"description" yaml:"description"`
	CreatedAt   time.Time `json:"created_at" yaml:"created_at"`
}

// Writable returns the writable part of u (its password is never read).
func (u User) Writable() UserPut {
	return UserPut{Description: u.Description}
}

// UsersPost creates a user. The password must not be empty.
type UsersPost struct {
	Name        string `json:"name" yaml:"name"`
	Password    string `json:"password" yaml:"password"`
	Description string `json:"description" yaml:"description"`
}

// UserPut replaces a user's description (PUT) or changes the fields sent
// (PATCH). Password, when sent, replaces the password; a PUT without it
// keeps the current one, and a password sent empty is refused.
type UserPut struct {
	Description string `json:"description" yaml:"description"`
	Password    string `json:"password,omitempty" yaml:"password,omitempty"`
}
