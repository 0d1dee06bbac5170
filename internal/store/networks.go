package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Network is a managed network's stored record.
type Network struct {
	ID int64
	// Project holds the network ("" is stored as "default"). Names are
	// unique across projects all the same: a bridge is a host interface.
	Project     string
	Name        string
	Type        string
	Description string
	Config      map[string]string
}

// Allocation is what one instance NIC holds on a managed network: its MAC
// and its addresses (empty when the family is off).
type Allocation struct {
	Network    string
	InstanceID int64
	// Instance is the instance's name (read only: joined from instances).
	Instance   string
	Device     string
	Hwaddr     string
	IPv4, IPv6 string
}

// Forward is a network forward: a listen address on the host, its default
// target (config "target_address") and its port rules as stored JSON.
type Forward struct {
	Network       string
	ListenAddress string
	Description   string
	Config        map[string]string
	Ports         []ForwardPort
}

// ForwardPort is one port rule of a forward.
type ForwardPort struct {
	Description   string `json:"description"`
	Protocol      string `json:"protocol"`
	ListenPort    string `json:"listen_port"`
	TargetPort    string `json:"target_port"`
	TargetAddress string `json:"target_address"`
}

const networkSelect = `SELECT id, project, name, type, description, config FROM networks`

func scanNetwork(row rowScanner) (Network, error) {
	var (
		n      Network
		config string
	)
	if err := row.Scan(&n.ID, &n.Project, &n.Name, &n.Type, &n.Description, &config); err != nil {
		return Network{}, err
	}
	var err error
	if n.Config, err = decodeStringMap(config); err != nil {
		return Network{}, fmt.Errorf("network %q config: %w", n.Name, err)
	}
	return n, nil
}

// CreateNetwork stores a new network in n.Project and sets n.ID. An
// existing name, in any project, is ErrConflict.
func (q *Queries) CreateNetwork(ctx context.Context, n *Network) error {
	config, err := marshalMap(n.Config)
	if err != nil {
		return fmt.Errorf("create network %q config: %w", n.Name, err)
	}
	if n.Project == "" {
		n.Project = "default"
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO networks (project, name, type, description, config) VALUES (?, ?, ?, ?, ?)",
			n.Project, n.Name, n.Type, n.Description, config)
		switch {
		case isUnique(err):
			return errdefs.Conflict("network %q already exists", n.Name)
		case isForeignKey(err):
			return errdefs.NotFound("project %q not found", n.Project)
		case isCheck(err):
			return errdefs.Invalid("create network %q: %v", n.Name, err)
		case err != nil:
			return fmt.Errorf("create network %q: %w", n.Name, err)
		}
		if n.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create network %q: %w", n.Name, err)
		}
		return nil
	})
}

// GetNetwork returns the network called name.
func (q *Queries) GetNetwork(ctx context.Context, name string) (Network, error) {
	n, err := scanNetwork(q.reader().QueryRowContext(ctx, networkSelect+" WHERE name = ?", name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Network{}, errdefs.NotFound("network %q not found", name)
	case err != nil:
		return Network{}, fmt.Errorf("get network %q: %w", name, err)
	}
	return n, nil
}

// ListNetworks returns every managed network, ordered by name.
func (q *Queries) ListNetworks(ctx context.Context) ([]Network, error) {
	rows, err := q.reader().QueryContext(ctx, networkSelect+" ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	defer rows.Close()
	out := []Network{}
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			return nil, fmt.Errorf("list networks: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return out, nil
}

// UpdateNetwork replaces the record with n.ID, name included.
func (q *Queries) UpdateNetwork(ctx context.Context, n Network) error {
	config, err := marshalMap(n.Config)
	if err != nil {
		return fmt.Errorf("update network %q config: %w", n.Name, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE networks SET name = ?, description = ?, config = ? WHERE id = ?",
			n.Name, n.Description, config, n.ID)
		switch {
		case isUnique(err):
			return errdefs.Conflict("network %q already exists", n.Name)
		case err != nil:
			return fmt.Errorf("update network %q: %w", n.Name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("update network %q: %w", n.Name, err)
		} else if k == 0 {
			return errdefs.NotFound("network %q not found", n.Name)
		}
		return nil
	})
}

// DeleteNetwork deletes the network called name. A network whose addresses
// some instance still holds is ErrConflict.
func (q *Queries) DeleteNetwork(ctx context.Context, name string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM networks WHERE name = ?", name)
		switch {
		case isForeignKey(err):
			return errdefs.Conflict("network %q has addresses allocated to instances", name)
		case err != nil:
			return fmt.Errorf("delete network %q: %w", name, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("delete network %q: %w", name, err)
		} else if k == 0 {
			return errdefs.NotFound("network %q not found", name)
		}
		return nil
	})
}

const allocationSelect = `
SELECT n.name, a.instance_id, i.name, a.device, a.hwaddr, COALESCE(a.ipv4, ''), COALESCE(a.ipv6, '')
  FROM network_allocations a
  JOIN networks n ON n.id = a.network_id
  JOIN instances i ON i.id = a.instance_id`

// ListAllocations returns the allocations on network (every network when
// network is empty), ordered by instance and device.
func (q *Queries) ListAllocations(ctx context.Context, network string) ([]Allocation, error) {
	query, args := allocationSelect, []any{}
	if network != "" {
		query += " WHERE n.name = ?"
		args = append(args, network)
	}
	rows, err := q.reader().QueryContext(ctx, query+" ORDER BY a.instance_id, a.device", args...)
	if err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	defer rows.Close()
	out := []Allocation{}
	for rows.Next() {
		var a Allocation
		if err := rows.Scan(&a.Network, &a.InstanceID, &a.Instance, &a.Device, &a.Hwaddr, &a.IPv4, &a.IPv6); err != nil {
			return nil, fmt.Errorf("list allocations: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	return out, nil
}

// PutAllocation stores a, replacing the instance device's previous one. An
// address or MAC another NIC on the network holds is ErrConflict.
func (q *Queries) PutAllocation(ctx context.Context, a Allocation) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO network_allocations (network_id, instance_id, device, hwaddr, ipv4, ipv6)
SELECT id, ?, ?, ?, NULLIF(?, ''), NULLIF(?, '') FROM networks WHERE name = ?
ON CONFLICT (instance_id, device) DO UPDATE SET
	network_id = excluded.network_id, hwaddr = excluded.hwaddr,
	ipv4 = excluded.ipv4, ipv6 = excluded.ipv6`,
			a.InstanceID, a.Device, a.Hwaddr, a.IPv4, a.IPv6, a.Network)
		switch {
		case isUnique(err):
			return errdefs.Conflict("an address or MAC of %s is already in use on network %q", a.Device, a.Network)
		case isForeignKey(err):
			return errdefs.NotFound("instance %d not found", a.InstanceID)
		case err != nil:
			return fmt.Errorf("allocate on network %q: %w", a.Network, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("allocate on network %q: %w", a.Network, err)
		} else if k == 0 {
			return errdefs.NotFound("network %q not found", a.Network)
		}
		return nil
	})
}

// DeleteAllocation releases what an instance's device holds; nothing held
// is not an error.
func (q *Queries) DeleteAllocation(ctx context.Context, instanceID int64, device string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			"DELETE FROM network_allocations WHERE instance_id = ? AND device = ?", instanceID, device); err != nil {
			return fmt.Errorf("release %s of instance %d: %w", device, instanceID, err)
		}
		return nil
	})
}

// ListForwards returns the forwards of network (all when empty).
func (q *Queries) ListForwards(ctx context.Context, network string) ([]Forward, error) {
	query, args := `
SELECT n.name, f.listen_address, f.description, f.config, f.ports
  FROM network_forwards f JOIN networks n ON n.id = f.network_id`, []any{}
	if network != "" {
		query += " WHERE n.name = ?"
		args = append(args, network)
	}
	rows, err := q.reader().QueryContext(ctx, query+" ORDER BY n.name, f.listen_address", args...)
	if err != nil {
		return nil, fmt.Errorf("list forwards: %w", err)
	}
	defer rows.Close()
	out := []Forward{}
	for rows.Next() {
		var (
			f             Forward
			config, ports string
		)
		if err := rows.Scan(&f.Network, &f.ListenAddress, &f.Description, &config, &ports); err != nil {
			return nil, fmt.Errorf("list forwards: %w", err)
		}
		if f.Config, err = decodeStringMap(config); err != nil {
			return nil, fmt.Errorf("forward %s config: %w", f.ListenAddress, err)
		}
		if err := json.Unmarshal([]byte(ports), &f.Ports); err != nil {
			return nil, fmt.Errorf("forward %s ports: %w", f.ListenAddress, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list forwards: %w", err)
	}
	return out, nil
}

// PutForward creates a forward, or replaces it when replace is set (a
// missing one is then ErrNotFound); creating an existing one is ErrConflict.
func (q *Queries) PutForward(ctx context.Context, f Forward, replace bool) error {
	config, err := marshalMap(f.Config)
	if err != nil {
		return fmt.Errorf("forward %s config: %w", f.ListenAddress, err)
	}
	if f.Ports == nil {
		f.Ports = []ForwardPort{}
	}
	ports, err := json.Marshal(f.Ports)
	if err != nil {
		return fmt.Errorf("forward %s ports: %w", f.ListenAddress, err)
	}
	return q.atomic(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		if replace {
			res, err = tx.ExecContext(ctx, `
UPDATE network_forwards SET description = ?, config = ?, ports = ?
 WHERE listen_address = ? AND network_id = (SELECT id FROM networks WHERE name = ?)`,
				f.Description, config, string(ports), f.ListenAddress, f.Network)
		} else {
			res, err = tx.ExecContext(ctx, `
INSERT INTO network_forwards (network_id, listen_address, description, config, ports)
SELECT id, ?, ?, ?, ? FROM networks WHERE name = ?`,
				f.ListenAddress, f.Description, config, string(ports), f.Network)
		}
		switch {
		case isUnique(err):
			return errdefs.Conflict("a forward for %s already exists on network %q", f.ListenAddress, f.Network)
		case err != nil:
			return fmt.Errorf("forward %s: %w", f.ListenAddress, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("forward %s: %w", f.ListenAddress, err)
		} else if k == 0 {
			return errdefs.NotFound("forward %s on network %q not found", f.ListenAddress, f.Network)
		}
		return nil
	})
}

// DeleteForward deletes one forward.
func (q *Queries) DeleteForward(ctx context.Context, network, listen string) error {
	return q.atomic(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
DELETE FROM network_forwards
 WHERE listen_address = ? AND network_id = (SELECT id FROM networks WHERE name = ?)`, listen, network)
		if err != nil {
			return fmt.Errorf("delete forward %s: %w", listen, err)
		}
		if k, err := rowsAffected(res); err != nil {
			return fmt.Errorf("delete forward %s: %w", listen, err)
		} else if k == 0 {
			return errdefs.NotFound("forward %s on network %q not found", listen, network)
		}
		return nil
	})
}
