package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

// benchInstance is a realistic record: a handful of config keys (volatile
// ones included) and two devices.
func benchInstance(i int) store.Instance {
	c := newInstance(fmt.Sprintf("c%05d", i))
	c.Config["volatile.last_state.power"] = "RUNNING"
	c.Config["volatile.eth0.hwaddr"] = "00:16:3e:00:00:01"
	c.Config["user.comment"] = "benchmark instance"
	c.Devices["eth0"] = map[string]string{"type": "nic", "network": "hangarbr0", "name": "eth0"}
	return c
}

func BenchmarkListInstances(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			s, _ := openStore(b)
			err := s.Atomic(ctx, func(q *store.Queries) error {
				for i := range n {
					c := benchInstance(i)
					if err := q.CreateInstance(ctx, &c); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				list, err := s.ListInstances(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) != n {
					b.Fatalf("%d instances, want %d", len(list), n)
				}
			}
		})
	}
}

func BenchmarkCreateInstance(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := benchInstance(i)
		i++
		if err := s.CreateInstance(ctx, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetInstance(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b)
	for i := range 1000 {
		c := benchInstance(i)
		if err := s.CreateInstance(ctx, &c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetInstance(ctx, "c00500"); err != nil {
			b.Fatal(err)
		}
	}
}
