package query

import (
	"strconv"
	"strings"
)

// seg is one component of a dotted field path.
type seg struct {
	key  string
	idx  int  // the key as a list index, -1 when it is not one
	wild bool // "*": every element of a list
}

// splitPath splits "a.b.c" into its components; "\." is a dot inside a
// key ("a\.b" is the key "a.b"), as the middleware reads it.
func splitPath(p string) []seg {
	var out []seg
	var cur strings.Builder
	pieces := strings.Split(p, ".")
	for i := 0; i < len(pieces); i++ {
		piece := pieces[i]
		for strings.HasSuffix(piece, `\`) && i+1 < len(pieces) {
			cur.WriteString(piece[:len(piece)-1])
			cur.WriteByte('.')
			i++
			piece = pieces[i]
		}
		cur.WriteString(piece)
		out = append(out, newSeg(cur.String()))
		cur.Reset()
	}
	return out
}

func newSeg(k string) seg {
	s := seg{key: k, idx: -1, wild: k == "*"}
	digits := k != ""
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			digits = false
			break
		}
	}
	if digits {
		if n, err := strconv.Atoi(k); err == nil {
			s.idx = n
		}
	}
	return s
}
