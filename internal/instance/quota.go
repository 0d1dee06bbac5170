package instance

// usage is what instances take from their project's limits.
type usage struct {
	instances, containers, vms int64
	cpu, memory, disk          int64
	processes                  int64
}
