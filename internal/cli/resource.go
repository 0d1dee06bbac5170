package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/client"
)

// The commands every kind of object has (list, show, edit, delete, rename)
// are built here, once; a kind supplies its documentation (a
// cobra.Command with Use, Short, Long and Example filled in) and its calls
// to the daemon. New kinds (networks, storage pools, volumes, projects)
// get the same flags, formats and messages by doing the same.

// listing is how one kind of object is listed.
type listing[T any] struct {
	header []string
	fetch  func(ctx context.Context, c *client.Client) ([]T, error)
	// filter keeps the items matching the command's arguments; nil: the
	// command takes none.
	filter func(items []T, filters []string) []T
	// compare orders the listing; nil keeps the daemon's order.
	compare func(a, b T) int
	row     func(T) []string
	// fetchJSON, when set, fetches the listing as the daemon's JSON array,
	// undecoded, for the yaml format without filters: decoding 1000
	// instances only to encode them again cost more than the request.
	// compare must then order by the string field sortKey alone.
	fetchJSON func(ctx context.Context, c *client.Client) (json.RawMessage, error)
	sortKey   string
	// noClient lists what the CLI itself keeps (remotes): fetch gets a
	// nil client and no daemon is dialled.
	noClient bool
}

// listCmd completes cmd into the kind's list command: alias ls, lxc's
// --format, and the listing's columns, filters and order.
func listCmd[T any](a *app, cmd *cobra.Command, l listing[T]) *cobra.Command {
	var format string
	cmd.Aliases = []string{"ls"}
	cmd.Args = exactArgs(0)
	if l.filter != nil {
		cmd.Args = cobra.ArbitraryArgs
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(cmd, format, listFormats...); err != nil {
			return err
		}
		var c *client.Client
		if !l.noClient {
			var err error
			if c, err = a.client(); err != nil {
				return err
			}
		}
		if format == formatYAML && l.fetchJSON != nil && len(args) == 0 {
			raw, err := l.fetchJSON(cmd.Context(), c)
			if err != nil {
				return err
			}
			return writeYAMLListJSON(a.out, raw, l.sortKey)
		}
		items, err := l.fetch(cmd.Context(), c)
		if err != nil {
			return err
		}
		if l.filter != nil && len(args) > 0 {
			items = l.filter(items, args)
		}
		return l.render(a.out, format, items)
	}
	addFormatFlag(cmd, &format)
	return cmd
}

// listUnderCmd completes cmd into a list command for the objects under
// one named object (a network's leases or forwards): its one argument is
// that name, given to fetch; flags, formats and order are listCmd's.
func listUnderCmd[T any](a *app, cmd *cobra.Command, l listing[T], fetch func(ctx context.Context, c *client.Client, name string) ([]T, error)) *cobra.Command {
	var format string
	cmd.Args = exactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(cmd, format, listFormats...); err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		items, err := fetch(cmd.Context(), c, args[0])
		if err != nil {
			return err
		}
		return l.render(a.out, format, items)
	}
	addFormatFlag(cmd, &format)
	return cmd
}

// render prints items in format: table and csv from the listing's rows,
// json and yaml from the API objects themselves, so that scripts get every
// field. An empty listing is [] in json and yaml, not null.
func (l listing[T]) render(w io.Writer, format string, items []T) error {
	items = slices.Clone(items)
	if items == nil {
		items = []T{}
	}
	if l.compare != nil {
		slices.SortFunc(items, l.compare)
	}
	var rows [][]string
	if format == formatTable || format == formatCSV {
		rows = make([][]string, 0, len(items))
		for _, item := range items {
			rows = append(rows, l.row(item))
		}
	}
	return renderList(w, format, l.header, rows, items)
}

// getter fetches one object by name, as shown by show.
type getter func(ctx context.Context, c *client.Client, name string) (any, error)

// showCmd completes cmd into a `show NAME` command printing what get
// returns as YAML.
func showCmd(a *app, cmd *cobra.Command, get getter) *cobra.Command {
	cmd.Args = exactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		v, err := get(cmd.Context(), c, args[0])
		if err != nil {
			return err
		}
		return renderYAML(a.out, v)
	}
	return cmd
}

// editing is how the writable part P of one kind of object is edited.
type editing[P any] struct {
	// what names the object in the editor's header.
	what func(name string) string
	// get returns the writable part and the ETag guarding the update.
	get func(ctx context.Context, c *client.Client, name string) (P, string, error)
	put func(ctx context.Context, c *client.Client, name string, p P, etag string) error
}

// editCmd completes cmd into an `edit NAME` command: the writable part in
// $EDITOR, or read from standard input when it is not a terminal, sent
// back guarded by the ETag it was read with.
func editCmd[P any](a *app, cmd *cobra.Command, e editing[P]) *cobra.Command {
	cmd.Args = exactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		name := args[0]
		cur, etag, err := e.get(ctx, c, name)
		if err != nil {
			return err
		}
		return a.editYAML(ctx, e.what(name), cur, func(data []byte) error {
			var p P
			if err := decodeYAML(data, &p); err != nil {
				return err
			}
			return e.put(ctx, c, name, p, etag)
		})
	}
	return cmd
}

// deleteCmd completes cmd into a `delete NAME...` command (alias rm)
// calling del for every name.
func deleteCmd(a *app, cmd *cobra.Command, del func(ctx context.Context, c *client.Client, name string) error) *cobra.Command {
	cmd.Aliases = []string{"rm"}
	cmd.Args = minArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return forEach(args, func(name string) error {
			return del(cmd.Context(), c, name)
		})
	}
	return cmd
}

// renameCmd completes cmd into a `rename OLD NEW` command (alias mv unless
// cmd has its own).
func renameCmd(a *app, cmd *cobra.Command, rename func(ctx context.Context, c *client.Client, from, to string) error) *cobra.Command {
	if cmd.Aliases == nil {
		cmd.Aliases = []string{"mv"}
	}
	cmd.Args = exactArgs(2)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return rename(cmd.Context(), c, args[0], args[1])
	}
	return cmd
}

// readBody reads a create command's body, the resource's YAML, from
// standard input when it is a pipe or a file; a terminal is left alone.
func (a *app) readBody(put any) error {
	if !stdinHasData(a.in) || isTerminal(a.in) {
		return nil
	}
	data, err := io.ReadAll(a.in)
	if err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	return decodeYAML(data, put)
}

// addSettings adds KEY=VALUE arguments to *cfg, making it if need be.
func addSettings(cmd *cobra.Command, cfg *map[string]string, args []string) error {
	if len(args) == 0 {
		return nil
	}
	settings, err := parseKeyValueList(args)
	if err != nil {
		return usageErrorf(cmd, "%v", err)
	}
	if *cfg == nil {
		*cfg = map[string]string{}
	}
	for k, v := range settings {
		(*cfg)[k] = v
	}
	return nil
}
