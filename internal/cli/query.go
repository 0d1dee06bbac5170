package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newQueryCmd(a *app) *cobra.Command {
	var (
		method string
		data   string
		wait   bool
		raw    bool
	)
	cmd := &cobra.Command{
		Use:   "query PATH",
		Short: "Send a raw request to the API",
		Long: "Send a raw request to hangard's API and print the response's metadata\n" +
			"as JSON. -d - reads the request body from standard input.",
		Example: "  hangar query /1.0\n" +
			"  hangar query -X PATCH -d '{\"config\":{\"user.a\":\"b\"}}' /1.0/instances/c1\n" +
			"  hangar query -X DELETE --wait /1.0/instances/c1",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if !strings.HasPrefix(path, "/") {
				return usageErrorf(cmd, "PATH must start with /, as in /1.0/instances")
			}
			var body any
			if data == "-" {
				b, err := io.ReadAll(a.in)
				if err != nil {
					return fmt.Errorf("read standard input: %w", err)
				}
				data = string(b)
			}
			if data != "" {
				if !json.Valid([]byte(data)) {
					return usageErrorf(cmd, "the request body (-d) is not valid JSON")
				}
				body = json.RawMessage(data)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			resp, _, err := c.Query(ctx, strings.ToUpper(method), path, body, "")
			if err != nil {
				return err
			}
			if raw {
				return printIndentedJSON(a.out, resp)
			}
			if wait && resp.Type == api.AsyncResponse {
				var op api.Operation
				if err := json.Unmarshal(resp.Metadata, &op); err != nil {
					return fmt.Errorf("decode operation: %w", err)
				}
				final, err := c.WaitOperation(ctx, op.ID, -1)
				if err != nil {
					return err
				}
				if err := printIndentedJSON(a.out, final); err != nil {
					return err
				}
				if final.StatusCode != api.Success {
					return &client.OperationError{Operation: *final}
				}
				return nil
			}
			if len(resp.Metadata) == 0 || string(resp.Metadata) == "null" {
				return nil
			}
			return printIndentedJSON(a.out, resp.Metadata)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&method, "request", "X", http.MethodGet, "HTTP method")
	f.StringVarP(&data, "data", "d", "", "JSON request body (- for standard input)")
	f.BoolVar(&wait, "wait", false, "wait for an operation to end and print it")
	f.BoolVar(&raw, "raw", false, "print the whole response envelope")
	return cmd
}

func printIndentedJSON(w io.Writer, v any) error {
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}
