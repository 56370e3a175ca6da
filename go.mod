module github.com/chmedic/chmedic

go 1.26.0
