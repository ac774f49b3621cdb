// Shared by monitor.c and monitor.go.
#ifndef STINT_MONITOR_H
#define STINT_MONITOR_H

// STINT_MONITOR_ENV, set in its environment, makes a process of stint's
// binary a monitor (monitor.c); nothing else ever sets it.
#define STINT_MONITOR_ENV "_STINT_MONITOR"
// STINT_MONITOR_FD is the monitor's end of its socket, and then the agent's.
#define STINT_MONITOR_FD 3
// STINT_MONITOR_MAX bounds a request: LXCPATH, NAME and PATH.
#define STINT_MONITOR_MAX 8192

#endif
