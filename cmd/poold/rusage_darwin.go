package main

// maxRSSUnit is the unit of ru_maxrss: bytes on darwin.
const maxRSSUnit = 1
