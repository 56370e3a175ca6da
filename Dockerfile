# syntax=docker/dockerfile:1
# Build: docker build -t chmedic .
# Run:   docker run -p 9135:9135 -v chmedic-data:/var/lib/chmedic \
#          -v $PWD/chmedic.yaml:/etc/chmedic/chmedic.yaml:ro chmedic
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/chmedic ./cmd/chmedic \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chmedic /usr/local/bin/chmedic
COPY --from=build --chown=65532:65532 /out/data /var/lib/chmedic
COPY cmd/chmedic/chmedic.example.yaml /etc/chmedic/chmedic.yaml
USER 65532:65532
# The store (SQLite) lives here (see --store.path in CMD).
VOLUME ["/var/lib/chmedic"]
EXPOSE 9135
# distroless has no shell or curl: the binary probes itself.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["/usr/local/bin/chmedic", "healthcheck", "--url", "http://127.0.0.1:9135/healthz"]
ENTRYPOINT ["/usr/local/bin/chmedic"]
CMD ["serve", "--config", "/etc/chmedic/chmedic.yaml", "--web.listen-address", "0.0.0.0:9135", "--store.path", "/var/lib/chmedic/chmedic.db"]
