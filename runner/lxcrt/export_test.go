package lxcrt

// ContainerCgroups exposes containerCgroups to the package's external tests.
var ContainerCgroups = containerCgroups
