module github.com/mtcluster/mtc

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/google/uuid v1.6.0
	github.com/ncw/directio v1.0.5
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.50.0
	pgregory.net/rapid v1.3.0
)

require github.com/vishvananda/netns v0.0.5 // indirect
