package query

import (
	"strconv"
)

// projNode is select compiled into the tree of the objects it builds:
// "image.os" and "image.arch" share one "image" node, ["name", "n"] is a
// top-level leaf "n" read from "name". The root has no key.
type projNode struct {
	key      string
	leaf     bool
	src      []seg  // leaf: the path read from the entry
	path     string // leaf: its attribute path, for errors
	children []*projNode
}

func (p *projNode) child(key string) *projNode {
	for _, c := range p.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// compileSelect reads select: field paths and [path, alias] pairs.
func compileSelect(raw any, path string) (*projNode, map[string][]seg, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, nil, &Error{Path: path, Message: "select is a list of field names and [field, alias] pairs"}
	}
	root := &projNode{}
	aliases := map[string][]seg{}
	for i, s := range list {
		ip := path + "." + strconv.Itoa(i)
		switch x := s.(type) {
		case string:
			if x == "" {
				return nil, nil, &Error{Path: ip, Message: "a selected field name is a non-empty string"}
			}
			segs := splitPath(x)
			addSelect(root, segs, ip)
			delete(aliases, segs[0].key)
		case []any:
			if len(x) != 2 {
				return nil, nil, &Error{Path: ip, Message: "a select as list holds two items: the field selected and the name it is given in the result"}
			}
			for j, e := range x {
				if str, ok := e.(string); !ok || str == "" {
					return nil, nil, &Error{Path: ip + "." + strconv.Itoa(j), Message: "an item of a select pair is a non-empty string"}
				}
			}
			src, alias := splitPath(x[0].(string)), x[1].(string)
			n := &projNode{key: alias, leaf: true, src: src, path: ip}
			if old := root.child(alias); old != nil {
				*old = *n // the last one wins, as a dict assignment
			} else {
				root.children = append(root.children, n)
			}
			aliases[alias] = src
		default:
			return nil, nil, &Error{Path: ip, Message: "a selector is a field name (string) or [field, alias]"}
		}
	}
	return root, aliases, nil
}

// addSelect adds a dotted path to the tree. A path under one already
// selected whole is covered by it; a whole selection replaces the parts
// selected before.
func addSelect(root *projNode, segs []seg, path string) {
	n := root
	for i, s := range segs {
		c := n.child(s.key)
		if i == len(segs)-1 {
			leaf := &projNode{key: s.key, leaf: true, src: segs, path: path}
			if c != nil {
				*c = *leaf
			} else {
				n.children = append(n.children, leaf)
			}
			return
		}
		switch {
		case c == nil:
			c = &projNode{key: s.key}
			n.children = append(n.children, c)
		case c.leaf:
			return
		}
		n = c
	}
}

// project builds the selected object of one entry. Fields an entry lacks
// are left out, as are objects that would hold nothing.
func (p *projNode) project(e map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(p.children))
	for _, c := range p.children {
		if c.leaf {
			v, found, err := selectPath(e, c)
			if err != nil {
				return nil, err
			}
			if found {
				out[c.key] = v
			}
			continue
		}
		sub, err := c.project(e)
		if err != nil {
			return nil, err
		}
		if len(sub) > 0 {
			out[c.key] = sub
		}
	}
	return out, nil
}

// selectPath reads a selected path through objects only: a list in the
// middle is an error (the middleware's "selecting by list index is not
// supported"), null or a scalar in the middle is an absent field.
func selectPath(e map[string]any, c *projNode) (any, bool, error) {
	var cur any = e
	for _, s := range c.src {
		switch kindOf(cur) {
		case kObj:
			v, ok, _ := objGet(cur, s.key)
			if !ok {
				return nil, false, nil
			}
			cur = v
		case kList:
			return nil, false, &Error{Path: c.path, Message: "selecting inside a list (by index or wildcard) is not supported"}
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}
