# flip in a FROM scratch image: the binary is static (CGO_ENABLED=0) and
# needs nothing else. Build the binary first (no image is pulled):
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o flip .
#   docker build -t flip .
# Run with the host's network and the two capabilities it needs:
#   docker run -d --name flip --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#     --env-file /etc/default/flip flip
FROM scratch
COPY flip /flip
ENTRYPOINT ["/flip"]
