//go:build !darwin

package main

// maxRSSUnit is the unit of ru_maxrss: KiB on Linux and FreeBSD.
const maxRSSUnit = 1024
