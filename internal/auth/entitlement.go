package auth

import "strings"

// Entitlement is a right held on an object.
type Entitlement string

// The entitlements. Which ones apply to which object type is in
// Entitlements; how they imply each other is in grants.allows.
const (
	// Server.
	Admin             Entitlement = "admin"               // everything, everywhere
	Viewer            Entitlement = "viewer"              // can_view* (on the server: everywhere; on a project: inside it)
	CanCreateProjects Entitlement = "can_create_projects" // POST /1.0/projects
	CanViewMetrics    Entitlement = "can_view_metrics"    // GET /1.0/metrics
	CanViewResources  Entitlement = "can_view_resources"  // GET /1.0/resources

	// Project.
	Operator           Entitlement = "operator"             // everything inside the project, not the project itself
	CanManageInstances Entitlement = "can_manage_instances" // create and delete instances
	CanViewEvents      Entitlement = "can_view_events"
	CanViewOperations  Entitlement = "can_view_operations"
	// Seeing every instance of the project (seed 003's velocity.vm.view),
	// and seeing them and changing their state (velocity.vm.state):
	// Incus's names for the same project-level rights.
	CanViewInstances    Entitlement = "can_view_instances"
	CanOperateInstances Entitlement = "can_operate_instances"
	// Creating the objects a project holds (Incus's names). Instances are
	// can_manage_instances, which also deletes them.
	CanCreateImages         Entitlement = "can_create_images"
	CanCreateProfiles       Entitlement = "can_create_profiles"
	CanCreateNetworks       Entitlement = "can_create_networks"
	CanCreateStorageVolumes Entitlement = "can_create_storage_volumes"

	// Shared by several types.
	CanView   Entitlement = "can_view"
	CanEdit   Entitlement = "can_edit"
	CanDelete Entitlement = "can_delete"

	// Instance.
	CanExec            Entitlement = "can_exec" // exec, console, files
	CanUpdateState     Entitlement = "can_update_state"
	CanManageSnapshots Entitlement = "can_manage_snapshots"
	CanManageBackups   Entitlement = "can_manage_backups"
)

// Entitlements lists, per object type, the entitlements a group may hold
// on an object of that type.
var Entitlements = map[ObjectType][]Entitlement{
	TypeServer: {Admin, Viewer, CanView, CanEdit, CanCreateProjects, CanViewMetrics, CanViewResources},
	TypeProject: {Operator, Viewer, CanView, CanEdit, CanDelete, CanManageInstances, CanViewEvents, CanViewOperations,
		CanCreateImages, CanCreateProfiles, CanCreateNetworks, CanCreateStorageVolumes,
		CanViewInstances, CanOperateInstances},
	TypeInstance:      {CanView, CanEdit, CanDelete, CanExec, CanUpdateState, CanManageSnapshots, CanManageBackups},
	TypeImage:         {CanView, CanEdit, CanDelete},
	TypeNetwork:       {CanView, CanEdit, CanDelete},
	TypeStoragePool:   {CanView, CanEdit, CanDelete},
	TypeStorageVolume: {CanView, CanEdit, CanDelete},
	TypeProfile:       {CanView, CanEdit, CanDelete},
	TypeCertificate:   {CanView, CanEdit, CanDelete},
}

// Valid tells whether e may be held on an object of type t.
func Valid(t ObjectType, e Entitlement) bool {
	for _, x := range Entitlements[t] {
		if x == e {
			return true
		}
	}
	return false
}

// viewing tells whether e only reads: what viewer implies.
func viewing(e Entitlement) bool { return strings.HasPrefix(string(e), "can_view") }
