/**
 * Unix sockets that hand their caller a container runtime or the init
 * system: talking to one is acting as root on the host. Matched by full path
 * and by file name (a runtime socket bind-mounted elsewhere keeps its name).
 */
const BY_PATH: Record<string, string> = {
  '/run/systemd/private': 'systemd',
  '/var/run/systemd/private': 'systemd',
  '/run/dbus/system_bus_socket': 'dbus-system',
  '/var/run/dbus/system_bus_socket': 'dbus-system',
};

const BY_NAME: Record<string, string> = {
  'docker.sock': 'docker',
  'containerd.sock': 'containerd',
  'containerd.sock.ttrpc': 'containerd',
  'podman.sock': 'podman',
  'crio.sock': 'cri-o',
  'system_bus_socket': 'dbus-system',
};

/** The runtime a socket path belongs to, or null. Abstract names ('@...') never match. */
export function runtimeSocket(path: string): string | null {
  if (path.startsWith('@')) return null;
  const byPath = BY_PATH[path];
  if (byPath !== undefined) return byPath;
  const name = path.slice(path.lastIndexOf('/') + 1);
  return Object.hasOwn(BY_NAME, name) ? BY_NAME[name]! : null;
}
