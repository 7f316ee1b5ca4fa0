module a.upkeep.local/shim

go 1.26.8
