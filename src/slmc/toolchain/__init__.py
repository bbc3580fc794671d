"""Build the generated project and run it: on the host, and (targets permitting) under QEMU."""
