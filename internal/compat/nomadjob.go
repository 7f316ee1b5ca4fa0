package compat

import "time"

// The Nomad job the exporter writes, with only the fields it sets. They
// stand in for github.com/hashicorp/nomad/api's types, which would pull an
// HTTP client and its dependencies into the daemon for one subcommand.
// The names are the api's (its JSON has the Go field names); a test
// decodes every job strictly into api.Job (nomadjob_test.go).
//
// Fields are in the order of their names, because encoding/json writes
// them in declaration order and the files have always had sorted keys (the
// golden files, and users' diffs, stay the same). The api has no
// omitempty: a field the api holds by value is left out when zero, one it
// holds by pointer is always written when set, zero included (Count 0,
// Attempts 0 and Unlimited false mean something). Durations are
// nanoseconds, as time.Duration is in the api.

type nomadJob struct {
	Datacenters []string          `json:",omitempty"`
	ID          string            `json:"ID"`
	Meta        map[string]string `json:",omitempty"`
	Name        string
	TaskGroups  []*nomadTaskGroup `json:",omitempty"`
	Type        string
}

type nomadTaskGroup struct {
	Count            int
	Name             string
	Networks         []*nomadNetwork        `json:",omitempty"`
	ReschedulePolicy *nomadReschedulePolicy `json:",omitempty"`
	RestartPolicy    *nomadRestartPolicy    `json:",omitempty"`
	Tasks            []*nomadTask           `json:",omitempty"`
	Update           *nomadUpdate           `json:",omitempty"`
}

type nomadTask struct {
	Config      nomadRawExecConfig
	Driver      string            `json:",omitempty"`
	Env         map[string]string `json:",omitempty"`
	KillSignal  string            `json:",omitempty"`
	KillTimeout time.Duration
	LogConfig   *nomadLogConfig  `json:",omitempty"`
	Name        string           `json:",omitempty"`
	Resources   *nomadResources  `json:",omitempty"`
	Services    []*nomadService  `json:",omitempty"`
	Templates   []*nomadTemplate `json:",omitempty"`
	User        string           `json:",omitempty"`
}

// nomadRawExecConfig is the raw_exec driver's config block.
type nomadRawExecConfig struct {
	Args    []string `json:"args,omitempty"`
	Command string   `json:"command"`
}

type nomadTemplate struct {
	ChangeMode   string
	DestPath     string
	EmbeddedTmpl string
	Envvars      bool `json:",omitempty"`
	LeftDelim    string
	RightDelim   string
}

type nomadRestartPolicy struct {
	Attempts int
	Delay    time.Duration
	Interval time.Duration
	Mode     string
}

type nomadReschedulePolicy struct {
	Attempts      *int           `json:",omitempty"`
	Delay         *time.Duration `json:",omitempty"`
	DelayFunction string         `json:",omitempty"`
	MaxDelay      *time.Duration `json:",omitempty"`
	Unlimited     bool
}

type nomadLogConfig struct {
	MaxFileSizeMB int
	MaxFiles      int
}

type nomadNetwork struct {
	Mode          string      `json:",omitempty"`
	ReservedPorts []nomadPort `json:",omitempty"`
}

type nomadPort struct {
	Label string `json:",omitempty"`
	Value int    `json:",omitempty"`
}

type nomadUpdate struct {
	HealthCheck    string
	MinHealthyTime time.Duration
}

type nomadResources struct {
	MemoryMB int
}

type nomadService struct {
	Checks    []nomadCheck `json:",omitempty"`
	Name      string       `json:",omitempty"`
	PortLabel string       `json:",omitempty"`
	Provider  string       `json:",omitempty"`
}

type nomadCheck struct {
	CheckRestart         *nomadCheckRestart  `json:",omitempty"`
	Header               map[string][]string `json:",omitempty"`
	Interval             time.Duration       `json:",omitempty"`
	Method               string              `json:",omitempty"`
	Name                 string              `json:",omitempty"`
	Path                 string              `json:",omitempty"`
	PortLabel            string              `json:",omitempty"`
	Protocol             string              `json:",omitempty"`
	SuccessBeforePassing int                 `json:",omitempty"`
	TLSSkipVerify        bool                `json:",omitempty"`
	Timeout              time.Duration       `json:",omitempty"`
	Type                 string              `json:",omitempty"`
}

type nomadCheckRestart struct {
	Grace time.Duration
	Limit int `json:",omitempty"`
}
