package firewall

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// newNetNS makes a network namespace of the test's own, with lo up, that
// lives as long as the test holds the handle. Nothing the test does in it
// reaches the host's network.
func newNetNS(t testing.TB) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and nftables")
	}
	var h netns.NsHandle
	var err error
	// netns.New moves the calling thread into the new namespace: a
	// throwaway thread takes that, and ends with it.
	osthread.Throwaway(func() { h, err = netns.New() })
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	nl := nlHandle(t, h)
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return h
}

func nsPath(h netns.NsHandle) string { return fmt.Sprintf("/proc/self/fd/%d", int(h)) }

func nlHandle(t testing.TB, h netns.NsHandle) *netlink.Handle {
	t.Helper()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink in namespace: %v", err)
	}
	t.Cleanup(nl.Close)
	return nl
}

// inNS runs fn on a throwaway thread inside h: sockets it makes and
// processes it starts belong to h.
func inNS(t testing.TB, h netns.NsHandle, fn func()) {
	t.Helper()
	var err error
	osthread.Throwaway(func() {
		if err = netns.Set(h); err == nil {
			fn()
		}
	})
	if err != nil {
		t.Fatalf("enter network namespace: %v", err)
	}
}

func openFirewall(t testing.TB, h netns.NsHandle) *Firewall {
	t.Helper()
	f, err := New(InNetNS(nsPath(h)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// ruleset is `nft list ruleset` in h, the administrator's view, when the
// nft command is installed ("" when not).
func ruleset(t testing.TB, h netns.NsHandle) string {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		return ""
	}
	var out []byte
	inNS(t, h, func() { out, err = exec.Command(nft, "list", "ruleset").CombinedOutput() })
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

// listing is the namespace's whole ruleset through the library: every
// table of every family, its chains and how many rules each holds, and
// its sets, sorted. It needs no nft command.
func listing(t testing.TB, h netns.NsHandle) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	var out []string
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("table %d %s", tb.Family, tb.Name))
		sets, err := c.GetSets(tb)
		if err != nil {
			t.Fatalf("list sets of %s: %v", tb.Name, err)
		}
		for _, s := range sets {
			els, err := c.GetSetElements(s)
			if err != nil {
				t.Fatalf("list elements of %s: %v", s.Name, err)
			}
			out = append(out, fmt.Sprintf("table %d %s set %s: %d elements", tb.Family, tb.Name, s.Name, len(els)))
		}
	}
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatalf("list rules of %s: %v", ch.Name, err)
		}
		out = append(out, fmt.Sprintf("table %d %s chain %s: %d rules", ch.Table.Family, ch.Table.Name, ch.Name, len(rules)))
	}
	sort.Strings(out)
	return out
}

// chainRules counts the rules of each chain of `inet hangar` (by name)
// and `bridge hangar` ("bridge " + name).
func chainRules(t testing.TB, h netns.NsHandle) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, tb := range []struct {
		family nftables.TableFamily
		key    string
	}{{nftables.TableFamilyINet, ""}, {nftables.TableFamilyBridge, "bridge "}} {
		prefix := fmt.Sprintf("table %d %s chain ", tb.family, TableName)
		for _, l := range listing(t, h) {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				var name string
				var n int
				if _, err := fmt.Sscanf(rest, "%s %d rules", &name, &n); err != nil {
					t.Fatalf("parse %q: %v", l, err)
				}
				got[tb.key+strings.TrimSuffix(name, ":")] = n
			}
		}
	}
	return got
}

// addForeignTable puts a table that is not hangard's into h, as another
// program on the host would: the firewall must never touch it.
func addForeignTable(t testing.TB, h netns.NsHandle) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []*nftables.Table{
		{Name: "other", Family: nftables.TableFamilyIPv4},
		// Same name as ours, another family: a different table.
		{Name: TableName, Family: nftables.TableFamilyIPv6},
		// Another program's bridge filter, hooked where ours is.
		{Name: "other", Family: nftables.TableFamilyBridge},
	} {
		c.AddTable(tb)
		hook := nftables.ChainHookInput
		if tb.Family == nftables.TableFamilyBridge {
			hook = nftables.ChainHookPrerouting
		}
		c.AddChain(&nftables.Chain{
			Name: "input", Table: tb, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter,
		})
		mine := c.AddChain(&nftables.Chain{Name: "mine", Table: tb})
		c.AddRule(&nftables.Rule{Table: tb, Chain: mine, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("add foreign tables: %v", err)
	}
}
