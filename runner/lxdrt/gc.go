package lxdrt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/canonical/lxd/shared/api"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// Instance is one of stint's instances on the remote.
type Instance struct {
	Name      string            // the contract's name
	Instance  string            // LXD's name
	Location  string            // the cluster member ("" or "none" off a cluster)
	State     container.State   //
	Ephemeral bool              // deleted by LXD when it stops
	Tags      map[string]string // user.stint.* keys, without the prefix
}

// Instances lists this owner's instances, whatever LXD calls them;
// instances of other owners and untagged ones are not listed.
func (r *Runtime) Instances(ctx context.Context) ([]Instance, error) {
	insts, err := r.c.GetInstances(api.InstanceTypeContainer)
	if err != nil {
		return nil, r.fail("", "list instances", err)
	}
	var out []Instance
	for _, i := range insts {
		if r.owns(&i, "") {
			out = append(out, listed(&i))
		}
	}
	return out, nil
}

// Get is the instance behind name as Instances lists it; found is false
// when there is none.
func (r *Runtime) Get(ctx context.Context, name string) (i Instance, found bool, err error) {
	inst, _, err := r.instance(name)
	if err != nil || inst == nil {
		return Instance{}, false, err
	}
	return listed(inst), true, nil
}

// owns reports whether inst carries this owner's keys (and the contract
// name name, unless name is "").
func (r *Runtime) owns(inst *api.Instance, name string) bool {
	n := inst.Config[keyName]
	return inst.Config[keyOwner] == r.opts.Owner && n != "" && (name == "" || n == name)
}

// listed is inst as Instances lists it.
func listed(inst *api.Instance) Instance {
	tags := map[string]string{}
	for k, v := range inst.Config {
		if strings.HasPrefix(k, keyPrefix) {
			tags[strings.TrimPrefix(k, keyPrefix)] = v
		}
	}
	return Instance{Name: inst.Config[keyName], Instance: inst.Name, Location: inst.Location, State: stateOf(inst.StatusCode), Ephemeral: inst.Ephemeral, Tags: tags}
}

// GC destroys this owner's instances that keep says are no longer wanted
// (the engine decides from its journal; see Orphaned) and returns their
// names. Untagged instances and other owners' are never considered.
//
// An instance is found, and deleted, under the name LXD has for it, not
// the one InstanceName would give now: an older stint named instances
// "stint-…" (now "stintr-…"), and gc must still remove those it left.
func (r *Runtime) GC(ctx context.Context, keep func(Instance) bool) ([]string, error) {
	insts, err := r.Instances(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	var errs []error
	for _, i := range insts {
		if keep(i) {
			continue
		}
		if err := r.destroyListed(ctx, i); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, i.Name)
	}
	return gone, errors.Join(errs...)
}

// destroyListed destroys i by LXD's name for it, once more checked to be
// this owner's (it may have been replaced since it was listed).
func (r *Runtime) destroyListed(ctx context.Context, i Instance) error {
	inst, _, err := r.c.GetInstance(i.Instance)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return r.fail(i.Name, "destroy", err)
	}
	if !r.owns(inst, i.Name) {
		return r.fail(i.Name, "destroy", fmt.Errorf("instance %s: %w", inst.Name, ErrNotOwned))
	}
	return r.remove(ctx, i.Name, inst)
}

// Tag keys Orphaned reads: the client's host name and process id, which
// the engine puts in CreateOptions.Tags.
const (
	TagHost = "host"
	TagPid  = "pid"
)

// Orphaned reports whether i was made by a process of this host that is
// gone (a kill -9, a power loss): the default GC rule. Instances of
// other hosts, or without the tags, are not orphans by this rule.
func Orphaned(i Instance) bool {
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(i.Tags[TagPid])
	if err != nil || pid <= 0 || i.Tags[TagHost] != host {
		return false
	}
	return unix.Kill(pid, 0) == unix.ESRCH
}

// volumePrefix names stint's cache volumes on the remote's pool.
const volumePrefix = "stint-cache-"

// VolumeName is the custom volume behind the cache called name: shared
// by every job naming that cache, on this remote.
func VolumeName(name string) string { return lxdName(volumePrefix + name) }

// pool is the pool of cache volumes: Options.Pool, else the default
// profile's root disk pool.
func (r *Runtime) pool() (string, error) {
	if r.opts.Pool != "" {
		return r.opts.Pool, nil
	}
	prof, _, err := r.c.GetProfile("default")
	if err != nil {
		return "", err
	}
	for _, d := range prof.Devices {
		if d["type"] == "disk" && d["path"] == "/" && d["pool"] != "" {
			return d["pool"], nil
		}
	}
	return "", fmt.Errorf("the default profile has no root disk pool: give the remote a pool")
}

// ensureVolume creates the cache volume for name on pool (on member, on a
// cluster) unless it exists, and returns its volume name.
func (r *Runtime) ensureVolume(pool, name, member string) (string, error) {
	vol := VolumeName(name)
	c := r.c
	if r.c.IsClustered() && member != "" && member != "none" {
		c = c.UseTarget(member)
	}
	if _, _, err := c.GetStoragePoolVolume(pool, "custom", vol); err == nil {
		return vol, nil
	}
	err := c.CreateStoragePoolVolume(pool, api.StorageVolumesPost{
		Name: vol, Type: "custom", ContentType: "filesystem",
		StorageVolumePut: api.StorageVolumePut{
			Config:      map[string]string{keyOwner: r.opts.Owner, keyName: name},
			Description: "stint cache " + name,
		},
	})
	if err != nil {
		// Another job may have made it meanwhile.
		if _, _, gerr := c.GetStoragePoolVolume(pool, "custom", vol); gerr == nil {
			return vol, nil
		}
		return "", err
	}
	return vol, nil
}

// Volume is one of stint's cache volumes.
type Volume struct {
	Name     string // the cache's name
	Volume   string // LXD's volume name
	Pool     string
	Location string // the member holding it, on a cluster
}

// Volumes lists this owner's cache volumes.
func (r *Runtime) Volumes(ctx context.Context) ([]Volume, error) {
	pool, err := r.pool()
	if err != nil {
		return nil, r.fail("", "list volumes", err)
	}
	vols, err := r.c.GetStoragePoolVolumes(pool)
	if err != nil {
		return nil, r.fail("", "list volumes", err)
	}
	var out []Volume
	for _, v := range vols {
		if v.Type == "custom" && v.Config[keyOwner] == r.opts.Owner && v.Config[keyName] != "" {
			out = append(out, Volume{Name: v.Config[keyName], Volume: v.Name, Pool: pool, Location: v.Location})
		}
	}
	return out, nil
}

// DeleteVolume deletes a cache volume of this owner (on its member); an
// absent one is no error.
func (r *Runtime) DeleteVolume(ctx context.Context, v Volume) error {
	c := r.c
	if r.c.IsClustered() && v.Location != "" && v.Location != "none" {
		c = c.UseTarget(v.Location)
	}
	cur, _, err := c.GetStoragePoolVolume(v.Pool, "custom", v.Volume)
	if api.StatusErrorCheck(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return r.fail("", "delete volume "+v.Volume, err)
	}
	if cur.Config[keyOwner] != r.opts.Owner {
		return r.fail("", "delete volume "+v.Volume, ErrNotOwned)
	}
	if err := c.DeleteStoragePoolVolume(v.Pool, "custom", v.Volume); err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
		return r.fail("", "delete volume "+v.Volume, err)
	}
	return nil
}
