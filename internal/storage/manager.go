package storage

// Manager owns the pools and volumes.
type Manager struct{}
