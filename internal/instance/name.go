package instance

import (
	"math/rand/v2"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// validateName applies LXD's hostname rule: 1-63 letters, digits and
// hyphens, not starting with a digit or a hyphen, not ending with a hyphen.
func validateName(name string) error {
	if name == "" {
		return errdefs.Invalid("instance name must not be empty")
	}
	if len(name) > 63 {
		return errdefs.Invalid("instance name %q is longer than 63 characters", name)
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9':
			if i == 0 {
				return errdefs.Invalid("instance name %q must not start with a digit", name)
			}
		case r == '-':
			if i == 0 || i == len(name)-1 {
				return errdefs.Invalid("instance name %q must not start or end with a hyphen", name)
			}
		default:
			return errdefs.Invalid("instance name %q may only hold letters, digits and hyphens", name)
		}
	}
	return nil
}

var (
	nameAdjectives = strings.Fields(`able bold brave bright calm clever cosmic crisp daring eager fair fast
		fine fond glad grand happy keen kind light lively lucky merry mighty neat noble proud quick
		quiet rapid ready sharp shiny smart snowy solid steady sunny swift tidy vivid warm wise witty`)
	nameNouns = strings.Fields(`albatross badger beacon bison comet condor crane falcon ferret finch
		gannet glider heron ibis jackal kestrel lark lynx marten merlin osprey otter owl pelican
		petrel plover puffin raven robin rocket sparrow starling swift tern vulture wren zephyr`)
)

// randomName returns a readable name such as "brave-osprey".
func randomName() string {
	return nameAdjectives[rand.IntN(len(nameAdjectives))] + "-" + nameNouns[rand.IntN(len(nameNouns))]
}
