# make              the static binary ./upkeep (CGO_ENABLED=0, as the README's install line)
# make man          the man pages into ./man (upkeep.1, upkeep-CMD.1), generated from the commands
# make install      the binary into $(DESTDIR)$(PREFIX)/bin
# make install-man  the man pages into $(DESTDIR)$(MANDIR)/man1 (then: man upkeep-status)
# make completion   bash, zsh and fish completion scripts into ./completion
# make test         go test -race ./...
PREFIX  ?= /usr/local
MANDIR  ?= $(PREFIX)/share/man
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
# The go command stamps vcs.revision itself where it can; this is for where it cannot.
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
# The man pages' date: the last commit's, so the same tree gives the same pages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

GO ?= go

.PHONY: all build man install install-man completion test clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -buildvcs=true -ldflags "-X main.buildVersion=$(VERSION) -X main.buildCommit=$(COMMIT)" -o upkeep ./cmd/upkeep

# A build of its own: the __man command (cobra/doc) is only in -tags man builds.
man:
	rm -rf man && mkdir -p man
	CGO_ENABLED=0 $(GO) build -tags man -o man/upkeep-man ./cmd/upkeep
	man/upkeep-man __man man
	rm man/upkeep-man

completion: build
	mkdir -p completion
	./upkeep completion bash > completion/upkeep.bash
	./upkeep completion zsh > completion/_upkeep
	./upkeep completion fish > completion/upkeep.fish

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 upkeep $(DESTDIR)$(PREFIX)/bin/upkeep

install-man: man
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/

test:
	$(GO) test -race ./...

clean:
	rm -rf upkeep man completion
