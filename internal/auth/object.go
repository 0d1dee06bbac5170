package auth

// ObjectType is the kind of thing an entitlement is held on.
type ObjectType string

// The object types.
const (
	TypeServer        ObjectType = "server"
	TypeProject       ObjectType = "project"
	TypeInstance      ObjectType = "instance"
	TypeImage         ObjectType = "image"
	TypeNetwork       ObjectType = "network"
	TypeStoragePool   ObjectType = "storage_pool"
	TypeStorageVolume ObjectType = "storage_volume"
	TypeProfile       ObjectType = "profile"
	TypeCertificate   ObjectType = "certificate"
)

// ObjectTypes lists every object type, for validation and tests.
var ObjectTypes = []ObjectType{TypeServer, TypeProject, TypeInstance, TypeImage, TypeNetwork,
	TypeStoragePool, TypeStorageVolume, TypeProfile, TypeCertificate}

// Object is what a check is about. Project is the project that holds the
// object (for a project, its own name; empty for the server, storage
// pools and certificates, which belong to no project). Name is the
// object's name in that project: an image's fingerprint, a volume's
// "pool/type/name".
type Object struct {
	Type    ObjectType
	Project string
	Name    string
}

// Scoped tells whether the object lives inside a project.
func (o Object) Scoped() bool { return o.Project != "" }

func (o Object) String() string {
	switch {
	case o.Type == TypeServer:
		return "server"
	case o.Project == "" || o.Type == TypeProject:
		return string(o.Type) + " " + o.Name
	}
	return string(o.Type) + " " + o.Project + "/" + o.Name
}

// Server is the server itself.
func Server() Object { return Object{Type: TypeServer} }

// Project is the project named name.
func Project(name string) Object { return Object{Type: TypeProject, Project: name, Name: name} }

// Instance is the instance name in project.
func Instance(project, name string) Object {
	return Object{Type: TypeInstance, Project: project, Name: name}
}

// Image is the image with fingerprint fp held by project.
func Image(project, fp string) Object { return Object{Type: TypeImage, Project: project, Name: fp} }

// Network is the network name in project.
func Network(project, name string) Object {
	return Object{Type: TypeNetwork, Project: project, Name: name}
}

// Profile is the profile name in project.
func Profile(project, name string) Object {
	return Object{Type: TypeProfile, Project: project, Name: name}
}

// StoragePool is the storage pool name.
func StoragePool(name string) Object { return Object{Type: TypeStoragePool, Name: name} }

// StorageVolume is the volume of type typ called name on pool in project.
func StorageVolume(project, pool, typ, name string) Object {
	return Object{Type: TypeStorageVolume, Project: project, Name: pool + "/" + typ + "/" + name}
}

// Certificate is the trusted certificate with fingerprint fp.
func Certificate(fp string) Object { return Object{Type: TypeCertificate, Name: fp} }
