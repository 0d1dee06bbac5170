package api

// InstanceExecPost runs a command in an instance (POST
// /1.0/instances/{name}/exec).
type InstanceExecPost struct {
	Command     []string          `json:"command" yaml:"command"`
	WaitForWS   bool              `json:"wait-for-websocket" yaml:"wait-for-websocket"`
	Interactive bool              `json:"interactive" yaml:"interactive"`
	Environment map[string]string `json:"environment" yaml:"environment"`
	Width       int               `json:"width" yaml:"width"`
	Height      int               `json:"height" yaml:"height"`
	// RecordOutput keeps stdout and stderr as log files (only without
	// WaitForWS); the operation's metadata names them under "output".
	RecordOutput bool   `json:"record-output" yaml:"record-output"`
	User         uint32 `json:"user" yaml:"user"`
	Group        uint32 `json:"group" yaml:"group"`
	Cwd          string `json:"cwd" yaml:"cwd"`
}

// InstanceExecControl is a message on an exec's control websocket.
type InstanceExecControl struct {
	// Command is "window-resize" (Args width, height) or "signal".
	Command string            `json:"command" yaml:"command"`
	Args    map[string]string `json:"args" yaml:"args"`
	Signal  int               `json:"signal" yaml:"signal"`
}

// InstanceConsolePost attaches to an instance's console (POST
// /1.0/instances/{name}/console).
type InstanceConsolePost struct {
	Width  int `json:"width" yaml:"width"`
	Height int `json:"height" yaml:"height"`
	// Type is "console" (the default) or "vga" (virtual machines).
	Type string `json:"type" yaml:"type"`
}
