package store

import (
	"encoding/json"
	"fmt"
)

// marshalMap encodes a map column; nil is stored as {} so every row holds
// an object.
func marshalMap[M ~map[string]V, V any](m M) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

// decodeStringMap decodes a config or properties column into a non-nil map:
// callers write into records they read (rec.Config[k] = v).
func decodeStringMap(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode stored map: %w", err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// decodeDevices decodes a devices column into a non-nil map.
func decodeDevices(s string) (map[string]map[string]string, error) {
	var m map[string]map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode stored devices: %w", err)
	}
	if m == nil {
		m = map[string]map[string]string{}
	}
	return m, nil
}
