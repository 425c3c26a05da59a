# Finds BoringSSL, never OpenSSL. Debian's android-libboringssl-dev installs headers under
# /usr/include/android and libraries under /usr/lib/<arch>/android; a self-built BoringSSL is
# found with -DBORINGSSL_ROOT=<prefix>. Default search paths are never used: they hold OpenSSL.
include(CheckCSourceCompiles)
include(FindPackageHandleStandardArgs)

set(BORINGSSL_ROOT "/usr" CACHE PATH "BoringSSL prefix (Debian android-libboringssl-dev: /usr)")
if(DEFINED _BORINGSSL_LAST_ROOT AND NOT _BORINGSSL_LAST_ROOT STREQUAL BORINGSSL_ROOT)
  unset(BORINGSSL_INCLUDE_DIR CACHE)
  unset(BORINGSSL_SSL_LIBRARY CACHE)
  unset(BORINGSSL_CRYPTO_LIBRARY CACHE)
  unset(BORINGSSL_IS_BORINGSSL CACHE)
endif()
set(_BORINGSSL_LAST_ROOT "${BORINGSSL_ROOT}" CACHE INTERNAL "")

find_path(BORINGSSL_INCLUDE_DIR NAMES openssl/is_boringssl.h
  PATHS "${BORINGSSL_ROOT}" PATH_SUFFIXES include/android include NO_DEFAULT_PATH)
foreach(_c ssl crypto)
  string(TOUPPER "${_c}" _C)
  find_library(BORINGSSL_${_C}_LIBRARY NAMES ${_c}
    PATHS "${BORINGSSL_ROOT}"
    PATH_SUFFIXES lib/${CMAKE_LIBRARY_ARCHITECTURE}/android lib/android lib64 lib
    NO_DEFAULT_PATH)
endforeach()
find_package_handle_standard_args(BoringSSL REQUIRED_VARS
  BORINGSSL_SSL_LIBRARY BORINGSSL_CRYPTO_LIBRARY BORINGSSL_INCLUDE_DIR)

if(BoringSSL_FOUND)
  set(CMAKE_REQUIRED_INCLUDES "${BORINGSSL_INCLUDE_DIR}")
  set(CMAKE_REQUIRED_LIBRARIES "${BORINGSSL_SSL_LIBRARY};${BORINGSSL_CRYPTO_LIBRARY}")
  check_c_source_compiles("
#include <openssl/ssl.h>
#include <openssl/pool.h>
#ifndef OPENSSL_IS_BORINGSSL
#error not boringssl
#endif
int main(void) { SSL_CTX *c = SSL_CTX_new(TLS_method());
  SSL_CTX_set_select_certificate_cb(c, 0); return (int)CRYPTO_BUFFER_len(0); }" BORINGSSL_IS_BORINGSSL)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  if(NOT BORINGSSL_IS_BORINGSSL)
    message(FATAL_ERROR "${BORINGSSL_SSL_LIBRARY} / ${BORINGSSL_INCLUDE_DIR} are not BoringSSL; set BORINGSSL_ROOT")
  endif()
  get_filename_component(BORINGSSL_LIBRARY_DIR "${BORINGSSL_SSL_LIBRARY}" DIRECTORY)
  if(NOT TARGET BoringSSL::crypto)
    add_library(BoringSSL::crypto UNKNOWN IMPORTED)
    set_target_properties(BoringSSL::crypto PROPERTIES IMPORTED_LOCATION "${BORINGSSL_CRYPTO_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${BORINGSSL_INCLUDE_DIR}")
    add_library(BoringSSL::ssl UNKNOWN IMPORTED)
    set_target_properties(BoringSSL::ssl PROPERTIES IMPORTED_LOCATION "${BORINGSSL_SSL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${BORINGSSL_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES BoringSSL::crypto)
  endif()
endif()
