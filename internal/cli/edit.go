package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseKeyValues parses the two spellings lxc accepts for settings: "KEY
// VALUE" (exactly two arguments, the first without '=') or "KEY=VALUE...".
func parseKeyValues(args []string) (map[string]string, error) {
	if len(args) == 2 && !strings.Contains(args[0], "=") {
		if args[0] == "" {
			return nil, errors.New("empty key")
		}
		return map[string]string{args[0]: args[1]}, nil
	}
	return parseKeyValueList(args)
}

// parseKeyValueList parses "KEY=VALUE" arguments; the value may hold '='.
func parseKeyValueList(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no key=value given")
	}
	out := make(map[string]string, len(args))
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("invalid setting %q: expected key=value", arg)
		}
		if k == "" {
			return nil, fmt.Errorf("invalid setting %q: empty key", arg)
		}
		out[k] = v
	}
	return out, nil
}

// applySettings returns a copy of cfg with settings applied. An empty value
// removes the key, as setting a key to "" means unsetting it in LXD.
func applySettings(cfg, settings map[string]string) map[string]string {
	out := maps.Clone(cfg)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range settings {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// editHeader precedes the YAML shown in the editor.
const editHeader = "### This is a YAML representation of the %s.\n" +
	"### Any line starting with a '#' will be ignored.\n" +
	"###\n" +
	"### Save and quit to apply the change; leave it unchanged to cancel.\n"

// editYAML lets the user change current, shown as YAML, and hands the result
// to apply. When stdin is not a terminal the YAML is read from it instead,
// so that "hangar config show c1 | sed ... | hangar config edit c1" works.
// In the editor, a change that fails to parse or apply is offered for
// editing again, as lxc does.
func (a *app) editYAML(ctx context.Context, what string, current any, apply func([]byte) error) error {
	if !isTerminal(a.in) {
		data, err := io.ReadAll(a.in)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return errors.New("no YAML on standard input (run from a terminal to use an editor)")
		}
		return apply(data)
	}

	body, err := marshalYAML(current)
	if err != nil {
		return err
	}
	content := append([]byte(fmt.Sprintf(editHeader, what)), body...)
	original := content
	prompt := bufio.NewReader(a.in)
	for {
		edited, err := a.runEditor(content)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if bytes.Equal(edited, original) {
			return nil
		}
		err = apply(edited)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(a.errOut, "Error: %s\nPress enter to open the editor again or ctrl+c to abort change\n", oneLine(err.Error()))
		if err := readLine(ctx, prompt); err != nil {
			return err
		}
		content = edited
	}
}

// readLine waits for Enter; ctx (Ctrl-C) aborts the wait.
func readLine(ctx context.Context, r *bufio.Reader) error {
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadString('\n')
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runEditor opens content in $VISUAL, $EDITOR or vi and returns the result.
func (a *app) runEditor(content []byte) ([]byte, error) {
	f, err := os.CreateTemp("", "hangar_editor_*.yaml")
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, fmt.Errorf("write temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write temporary file: %w", err)
	}

	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	// $EDITOR may carry arguments ("code --wait").
	argv := strings.Fields(editor)
	cmd := exec.Command(argv[0], append(argv[1:], path)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.in, a.out, a.errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run editor %q: %w", editor, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read edited file: %w", err)
	}
	return data, nil
}

// decodeYAML parses edited YAML. Unknown fields are ignored, as lxc does, so
// the full output of a show command can be fed back to edit.
func decodeYAML(data []byte, out any) error {
	if err := yaml.Unmarshal(data, out); err != nil {
		return fmt.Errorf("parse YAML: %w", err)
	}
	return nil
}

// stdinHasData reports whether stdin is a pipe or file to read a definition
// from; a terminal or /dev/null is not.
func stdinHasData(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return in != nil
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	mode := st.Mode()
	return mode&os.ModeNamedPipe != 0 || mode.IsRegular()
}
