/**
 * The Nomad ACL policy the exporter's token needs: list allocations (stubs)
 * in every namespace. With `nomad.nodeId` unset it also needs
 * `agent { policy = "read" }` to learn the node ID from /v1/agent/self.
 */
export const minimalPolicy = `namespace "*" {
  capabilities = ["read-job"]
}
`;
