package virt

import "encoding/json"

// The argument models of the methods, as schemas (seed 001 and the
// middleware's virt.instance.* signatures) and as the Go structs the
// checked, defaulted values are read into.

// Enums of the seeds.
var (
	instanceTypes = []string{"CONTAINER", "VM"}
	ioBuses       = []string{"NVME", "VIRTIO-BLK", "VIRTIO-SCSI"}
	protos        = []string{"UDP", "TCP"}
	gpuTypes      = []string{"PHYSICAL", "MDEV", "MIG", "SRIOV"}
	nicTypes      = []string{"BRIDGED", "MACVLAN"}
)

// Device types of the seed's union.
const (
	devDisk  = "DISK"
	devGPU   = "GPU"
	devProxy = "PROXY"
	devTPM   = "TPM"
	devUSB   = "USB"
	devNIC   = "NIC"
	devPCI   = "PCI"
	devCDROM = "CDROM"
)

func optStr(name string, minLen int) field {
	return field{name: name, kind: kString, nullable: true, hasDef: true, minLen: minLen}
}

func optInt(name string, min, max *int64) field {
	return field{name: name, kind: kInt, nullable: true, hasDef: true, min: min, max: max}
}

// deviceCommon are the fields every device of the union has.
func deviceCommon(devType string) []field {
	return []field{
		optStr("name", 1),
		optStr("description", 1),
		{name: "readonly", kind: kBool, hasDef: true, def: false},
		{name: "dev_type", kind: kString, required: true, cnst: devType},
	}
}

func deviceSchema(devType string, fields ...field) *schema {
	return &schema{fields: append(deviceCommon(devType), fields...)}
}

var port = []*int64{i64(1), i64(65535)}

// deviceUnion is the seed's device union, picked by dev_type.
var deviceUnion = &union{key: "dev_type", variants: map[string]*schema{
	devDisk: deviceSchema(devDisk,
		optStr("source", 1),
		optStr("destination", 0),
		optInt("boot_priority", i64(0), nil),
		field{name: "io_bus", kind: kString, nullable: true, hasDef: true, enum: ioBuses},
		optStr("storage_pool", 1),
	),
	devGPU: deviceSchema(devGPU,
		field{name: "gpu_type", kind: kString, required: true, enum: gpuTypes},
		optStr("id", 0),
		optInt("gid", i64(0), i64(90000000)),
		optInt("uid", i64(0), i64(90000000)),
		optStr("mode", 0),
		optStr("mdev", 1),
		optStr("mig_uuid", 1),
		optStr("pci", 1),
		optStr("productid", 1),
		optStr("vendorid", 1),
	),
	devProxy: deviceSchema(devProxy,
		field{name: "source_proto", kind: kString, required: true, enum: protos},
		field{name: "source_port", kind: kInt, required: true, min: port[0], max: port[1]},
		field{name: "dest_proto", kind: kString, required: true, enum: protos},
		field{name: "dest_port", kind: kInt, required: true, min: port[0], max: port[1]},
	),
	devTPM: deviceSchema(devTPM, optStr("path", 0), optStr("pathrm", 0)),
	devUSB: deviceSchema(devUSB,
		optInt("bus", nil, nil), optInt("dev", nil, nil),
		optStr("product_id", 0), optStr("vendor_id", 0),
	),
	devNIC: deviceSchema(devNIC,
		optStr("network", 1),
		field{name: "nic_type", kind: kString, nullable: true, hasDef: true, enum: nicTypes},
		optStr("parent", 1),
		optStr("mac", 0),
	),
	devPCI: deviceSchema(devPCI, field{name: "address", kind: kString, required: true, minLen: 1}),
	devCDROM: deviceSchema(devCDROM,
		field{name: "source", kind: kString, required: true, minLen: 1},
		optInt("boot_priority", i64(0), nil),
	),
}}

// createSchema is virt.instance.create's argument (seed 001), with the
// VM fields of the middleware's VM-capable releases: instance_type VM,
// vnc_enabled, vnc_port, vnc_password, secure_boot (doc.go).
var createSchema = &schema{fields: []field{
	{name: "name", kind: kString, required: true, minLen: 1, maxLen: 200},
	{name: "source_type", kind: kString, hasDef: true, def: "IMAGE", cnst: "IMAGE"},
	optStr("storage_pool", 1),
	{name: "image", kind: kString, required: true, minLen: 1, maxLen: 200},
	{name: "root_disk_size", kind: kInt, hasDef: true, def: int64(10), min: i64(5)},
	{name: "root_disk_io_bus", kind: kString, hasDef: true, def: "NVME", enum: ioBuses},
	{name: "remote", kind: kString, hasDef: true, def: "LINUX_CONTAINERS", cnst: "LINUX_CONTAINERS"},
	{name: "instance_type", kind: kString, hasDef: true, def: "CONTAINER", enum: instanceTypes},
	{name: "environment", kind: kStringMap, nullable: true, hasDef: true},
	{name: "autostart", kind: kBool, nullable: true, hasDef: true, def: true},
	optStr("cpu", 0),
	{name: "devices", kind: kUnionList, nullable: true, hasDef: true, union: deviceUnion},
	optInt("memory", i64(0), nil),
	{name: "privileged_mode", kind: kBool, hasDef: true, def: false},
	{name: "vnc_enabled", kind: kBool, hasDef: true, def: false},
	optInt("vnc_port", i64(5900), i64(65535)),
	optStr("vnc_password", 1),
	{name: "secure_boot", kind: kBool, nullable: true, hasDef: true},
}}

// updateSchema is virt.instance.update's second argument: only the
// fields given change.
var updateSchema = &schema{fields: []field{
	{name: "environment", kind: kStringMap, nullable: true},
	{name: "autostart", kind: kBool, nullable: true},
	{name: "cpu", kind: kString, nullable: true},
	{name: "memory", kind: kInt, nullable: true, min: i64(0)},
	{name: "vnc_enabled", kind: kBool},
	{name: "vnc_port", kind: kInt, nullable: true, min: i64(5900), max: i64(65535)},
	{name: "vnc_password", kind: kString, nullable: true, minLen: 1},
	{name: "secure_boot", kind: kBool, nullable: true},
	{name: "root_disk_size", kind: kInt, nullable: true, min: i64(5)},
	{name: "root_disk_io_bus", kind: kString, nullable: true, enum: ioBuses},
}}

// stopSchema is virt.instance.stop's and restart's options.
var stopSchema = &schema{fields: []field{
	{name: "timeout", kind: kInt, hasDef: true, def: int64(-1), min: i64(-1)},
	{name: "force", kind: kBool, hasDef: true, def: false},
}}

// createArgs is a checked create.
type createArgs struct {
	Name           string            `json:"name"`
	SourceType     string            `json:"source_type"`
	StoragePool    *string           `json:"storage_pool"`
	Image          string            `json:"image"`
	RootDiskSize   int64             `json:"root_disk_size"`
	RootDiskIOBus  string            `json:"root_disk_io_bus"`
	Remote         string            `json:"remote"`
	InstanceType   string            `json:"instance_type"`
	Environment    map[string]string `json:"environment"`
	Autostart      *bool             `json:"autostart"`
	CPU            *string           `json:"cpu"`
	Devices        []deviceArgs      `json:"devices"`
	Memory         *int64            `json:"memory"`
	PrivilegedMode bool              `json:"privileged_mode"`
	VNCEnabled     bool              `json:"vnc_enabled"`
	VNCPort        *int64            `json:"vnc_port"`
	VNCPassword    *string           `json:"vnc_password"`
	SecureBoot     *bool             `json:"secure_boot"`
}

// updateArgs is a checked update; a nil pointer (or absent map) field
// was not given. The null-able fields record whether they were given
// as null through the given map.
type updateArgs struct {
	given         map[string]bool
	Environment   map[string]string `json:"environment"`
	Autostart     *bool             `json:"autostart"`
	CPU           *string           `json:"cpu"`
	Memory        *int64            `json:"memory"`
	VNCEnabled    *bool             `json:"vnc_enabled"`
	VNCPort       *int64            `json:"vnc_port"`
	VNCPassword   *string           `json:"vnc_password"`
	SecureBoot    *bool             `json:"secure_boot"`
	RootDiskSize  *int64            `json:"root_disk_size"`
	RootDiskIOBus *string           `json:"root_disk_io_bus"`
}

// deviceArgs is one device of the union; fields a type lacks stay zero.
type deviceArgs struct {
	Name         *string `json:"name"`
	Description  *string `json:"description"`
	Readonly     bool    `json:"readonly"`
	DevType      string  `json:"dev_type"`
	Source       *string `json:"source"`
	Destination  *string `json:"destination"`
	BootPriority *int64  `json:"boot_priority"`
	IOBus        *string `json:"io_bus"`
	StoragePool  *string `json:"storage_pool"`
	GPUType      string  `json:"gpu_type"`
	ID           *string `json:"id"`
	GID          *int64  `json:"gid"`
	UID          *int64  `json:"uid"`
	Mode         *string `json:"mode"`
	Mdev         *string `json:"mdev"`
	MigUUID      *string `json:"mig_uuid"`
	PCI          *string `json:"pci"`
	ProductID    *string `json:"productid"`
	VendorID     *string `json:"vendorid"`
	SourceProto  string  `json:"source_proto"`
	SourcePort   int64   `json:"source_port"`
	DestProto    string  `json:"dest_proto"`
	DestPort     int64   `json:"dest_port"`
	Path         *string `json:"path"`
	PathRM       *string `json:"pathrm"`
	Bus          *int64  `json:"bus"`
	Dev          *int64  `json:"dev"`
	USBProductID *string `json:"product_id"`
	USBVendorID  *string `json:"vendor_id"`
	Network      *string `json:"network"`
	NICType      *string `json:"nic_type"`
	Parent       *string `json:"parent"`
	MAC          *string `json:"mac"`
	Address      string  `json:"address"`
}

// into reads checked values (a schema's output) into v.
func into(checked any, v any) error {
	b, err := json.Marshal(checked)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
