// SPDX-License-Identifier: MIT
// Node has no datagram Unix sockets, so the notify protocol lives here: a
// single sendto() of the state string, as libsystemd's sd_notify does.
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int wa_sd_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return 0;
  if (state == NULL) return -EINVAL;

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  size_t len = strlen(path);
  // '/': file system socket; '@': abstract namespace (leading NUL on the wire)
  if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
  if (len >= sizeof(sa.sun_path)) return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, len);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = n < 0 ? errno : 0;
  close(fd);
  return err != 0 ? -err : 1;
}
