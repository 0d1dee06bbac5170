package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// TestDecodeSyncRaw checks the raw path against json.Unmarshal of the same
// body into a RawMessage: the same envelope and metadata where it takes
// the body, and no answer (so that the general path takes it) elsewhere.
func TestDecodeSyncRaw(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"list", `{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":[{"name":"a}\"],","n":1},{"x":[true,null,-1.5e3]}]}` + "\n", true},
		{"metadata first, spaces", " {\n\t\"metadata\" : { \"a\" : \"b\" } ,\r\n \"type\" : \"sync\", \"status_code\": 200 , \"status\":\"Success\"}\n", true},
		{"scalar metadata last", `{"type":"sync","status":"Success","status_code":200,"metadata":42}`, true},
		{"string metadata last", `{"type":"sync","status":"Success","status_code":200,"metadata":"x\\"}`, true},
		{"null metadata", `{"type":"sync","status":"Success","status_code":200,"metadata":null}`, true},
		{"no metadata", `{"type":"sync","status":"Success","status_code":200}`, true},
		{"escaped status", `{"type":"sync","status":"Succ\u0065ss","status_code":200,"metadata":[]}`, true},
		{"duplicate metadata", `{"type":"sync","metadata":[1],"metadata":[2]}`, true},
		{"async", `{"type":"async","status":"Operation created","status_code":100,"operation":"/1.0/operations/x","metadata":{}}`, false},
		{"error", `{"type":"error","error_code":404,"error":"not found","metadata":null}`, false},
		{"no type", `{"metadata":[]}`, false},
		{"key in another case", `{"Type":"sync","metadata":[]}`, false},
		{"escaped key", `{"type":"sync","met\u0061data":[]}`, false},
		{"invalid", `{"type":"sync","metadata":[}`, false},
		{"truncated", `{"type":"sync","metadata":[1,2`, false},
		{"not an object", `["type","sync"]`, false},
		{"empty", ``, false},
		{"type not a string", `{"type":1,"metadata":[]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			r, ok := decodeSyncRaw([]byte(tt.body), &raw)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				if raw != nil || r != nil {
					t.Fatalf("no answer, yet %v and metadata %s", r, raw)
				}
				return
			}
			var want struct {
				Type       api.ResponseType `json:"type"`
				Status     string           `json:"status"`
				StatusCode int              `json:"status_code"`
				Metadata   any              `json:"metadata"`
			}
			var wantRaw json.RawMessage
			want.Metadata = &wantRaw
			if err := json.Unmarshal([]byte(tt.body), &want); err != nil {
				t.Fatal(err)
			}
			if got := (api.Response{Type: want.Type, Status: want.Status, StatusCode: want.StatusCode}); !reflect.DeepEqual(*r, got) {
				t.Errorf("envelope %+v, want %+v", *r, got)
			}
			if string(raw) != string(wantRaw) && !(raw == nil && string(wantRaw) == "null") {
				t.Errorf("metadata %s, want %s", raw, wantRaw)
			}
		})
	}
}
