# Cross-compiling for aarch64 Linux (Kunpeng and other Arm servers) with Debian's toolchain:
#   apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu     (qemu-user runs the results on x86)
#   cmake -S . -B build-arm --toolchain cmake/aarch64-linux-gnu.cmake && cmake --build build-arm -j2
# A wheel: tools/build_wheel.sh aarch64. Another toolchain prefix: -DACLNN_MOE_CROSS_PREFIX=<triple>-
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT ACLNN_MOE_CROSS_PREFIX)
  set(ACLNN_MOE_CROSS_PREFIX "aarch64-linux-gnu-")
endif()
set(CMAKE_C_COMPILER "${ACLNN_MOE_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${ACLNN_MOE_CROSS_PREFIX}g++")

# Debian's multiarch sysroot of the cross toolchain; libraries and headers come from there only
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# the values passed on to try_compile() and to sub-projects (the samples' build)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ACLNN_MOE_CROSS_PREFIX)
