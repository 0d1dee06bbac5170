// Package api holds the wire types of hangard's native API, the LXD REST API
// 1.0. The daemon and the Go SDK (package client) both import it, so the JSON
// names are written once and cannot drift. Field names and envelopes follow
// LXD's shared/api; hangar's additions are listed in Extensions.
package api

import (
	"encoding/json"
	"time"
)

// ResponseType is the "type" of a response envelope.
type ResponseType string

// The three envelope kinds of LXD's API.
const (
	SyncResponse  ResponseType = "sync"
	AsyncResponse ResponseType = "async"
	ErrorResponse ResponseType = "error"
)

// Response is the envelope of every /1.0 answer.
type Response struct {
	Type       ResponseType    `json:"type"`
	Status     string          `json:"status"`
	StatusCode int             `json:"status_code"`
	Operation  string          `json:"operation"`
	ErrorCode  int             `json:"error_code"`
	Error      string          `json:"error"`
	Metadata   json.RawMessage `json:"metadata"`
}

// StatusCode is LXD's numeric status of an operation or an instance.
type StatusCode int

// LXD's status codes.
const (
	OperationCreated StatusCode = 100
	Started          StatusCode = 101
	Stopped          StatusCode = 102
	Running          StatusCode = 103
	Cancelling       StatusCode = 104
	Pending          StatusCode = 105
	Starting         StatusCode = 106
	Stopping         StatusCode = 107
	Aborting         StatusCode = 108
	Freezing         StatusCode = 109
	Frozen           StatusCode = 110
	Thawed           StatusCode = 111
	Error            StatusCode = 112
	Ready            StatusCode = 113
	Success          StatusCode = 200
	Failure          StatusCode = 400
	Cancelled        StatusCode = 401
)

var statusNames = map[StatusCode]string{
	OperationCreated: "Operation created",
	Started:          "Started",
	Stopped:          "Stopped",
	Running:          "Running",
	Cancelling:       "Cancelling",
	Pending:          "Pending",
	Starting:         "Starting",
	Stopping:         "Stopping",
	Aborting:         "Aborting",
	Freezing:         "Freezing",
	Frozen:           "Frozen",
	Thawed:           "Thawed",
	Error:            "Error",
	Ready:            "Ready",
	Success:          "Success",
	Failure:          "Failure",
	Cancelled:        "Cancelled",
}

// String returns LXD's name for the code ("Running", "Success", ...).
func (c StatusCode) String() string { return statusNames[c] }

// IsFinal reports whether an operation with this status has ended.
func (c StatusCode) IsFinal() bool { return c == Success || c == Failure || c == Cancelled }

// Operation classes.
const (
	OperationClassTask      = "task"
	OperationClassWebsocket = "websocket"
	OperationClassToken     = "token"
)

// Operation is a background task, as /1.0/operations/{id} shows it.
type Operation struct {
	ID          string              `json:"id" yaml:"id"`
	Class       string              `json:"class" yaml:"class"`
	Description string              `json:"description" yaml:"description"`
	CreatedAt   time.Time           `json:"created_at" yaml:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at" yaml:"updated_at"`
	Status      string              `json:"status" yaml:"status"`
	StatusCode  StatusCode          `json:"status_code" yaml:"status_code"`
	Resources   map[string][]string `json:"resources" yaml:"resources"`
	Metadata    map[string]any      `json:"metadata" yaml:"metadata"`
	MayCancel   bool                `json:"may_cancel" yaml:"may_cancel"`
	Err         string              `json:"err" yaml:"err"`
	Location    string              `json:"location" yaml:"location"`
}
