package gitlab

// ConfigOutput is what `config` prints: the JSON the runner reads
// (gitlab-runner executors/custom/api/config.go, ConfigExecOutput). Every
// field is optional; the runner keeps its own setting for an absent one.
type ConfigOutput struct {
	Driver            *DriverInfo        `json:"driver,omitempty"`
	Hostname          *string            `json:"hostname,omitempty"`
	BuildsDir         *string            `json:"builds_dir,omitempty"`
	CacheDir          *string            `json:"cache_dir,omitempty"`
	BuildsDirIsShared *bool              `json:"builds_dir_is_shared,omitempty"`
	JobEnv            *map[string]string `json:"job_env,omitempty"`
	Shell             *string            `json:"shell,omitempty"`
}

// DriverInfo names the driver in the job log ("Using Custom executor with
// driver stint 1.2.3...").
type DriverInfo struct {
	Name    *string `json:"name,omitempty"`
	Version *string `json:"version,omitempty"`
}

// DriverName is the driver's name in the job log.
const DriverName = "stint"

func ptr[T any](v T) *T { return &v }
