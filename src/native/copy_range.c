/*
 * copyRange(fdIn, offIn, fdOut, offOut, length) -> bytes copied, or -1 when the kernel cannot
 * copy between these files (no copy_file_range, another filesystem, a file type it refuses): the
 * caller then copies through user space. Bytes move inside the kernel (page cache to page cache,
 * or a reflink where the filesystem shares extents); they never reach JavaScript.
 *
 * Synchronous on purpose: strata calls it from a tar worker thread, which has nothing else to do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <node_api.h>

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value copy_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) {
    napi_throw_type_error(env, NULL, "copyRange(fdIn, offIn, fdOut, offOut, length)");
    return NULL;
  }
  int32_t fd_in, fd_out;
  int64_t off_in, off_out, length;
  if (napi_get_value_int32(env, argv[0], &fd_in) != napi_ok || napi_get_value_int64(env, argv[1], &off_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &fd_out) != napi_ok || napi_get_value_int64(env, argv[3], &off_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &length) != napi_ok || off_in < 0 || off_out < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "copyRange: descriptors and non-negative offsets and length expected");
    return NULL;
  }
  loff_t in = off_in, out = off_out;
  int64_t done = 0;
  while (done < length) {
    size_t want = (size_t)(length - done > (1 << 30) ? (1 << 30) : length - done);
    ssize_t n = copy_file_range(fd_in, &in, fd_out, &out, want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Nothing copied yet and the kernel says it cannot do this pair: let the caller copy.
      if (done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == EBADF)) {
        napi_value r;
        napi_create_int64(env, -1, &r);
        return r;
      }
      return fail(env, "copy_file_range", errno);
    }
    if (n == 0) break; /* end of the source file: the caller checks the count */
    done += n;
  }
  napi_value r;
  napi_create_int64(env, done, &r);
  return r;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "copyRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyRange", fn);
  return exports;
}
