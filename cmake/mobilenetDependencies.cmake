# Finds what mobilenet's targets link against, per component. Shared by the build and by the
# installed mobilenetConfig.cmake, so the two can never disagree.
#   core (always):  Torch, Eigen3
#   data:           simdjson, libjpeg-turbo (its libjpeg API), PNG, Threads
#   demo:           data's, and libjpeg-turbo's TurboJPEG (same package)
#   distributed:    Gloo's headers (LibTorch's c10d headers include them), Threads
#   onnx:           nothing for a consumer; our build: protoc, static protobuf, onnx.proto
# In the build tree every component is found (onnx only if present: MOBILENET_HAVE_ONNX); a
# consumer finds only the ones it asks for.
include(CMakeFindDependencyMacro)
# Under find_package(mobilenet) a missing dependency makes mobilenet NOT_FOUND naming it; in
# our own build it is a configure error.
macro(mobilenet_find_dependency)
  if(DEFINED CMAKE_FIND_PACKAGE_NAME)
    find_dependency(${ARGN})
  else()
    find_package(${ARGN} REQUIRED)
  endif()
endmacro()
if(NOT DEFINED MOBILENET_COMPONENTS)
  set(MOBILENET_COMPONENTS data demo distributed)
endif()
mobilenet_find_dependency(Torch)
# LibTorch older than 1.13 lacks APIs the headers use; say so here rather than in a compiler error.
# The version comes from LibTorch's own header, which every distribution of it ships.
if(Torch_FOUND OR TORCH_FOUND)
  # (1.x: torch/csrc/api/include/torch/version.h; 2.x: torch/headeronly/version.h.)
  set(MOBILENET_TORCH_VERSION "${Torch_VERSION}")
  foreach(header IN ITEMS torch/headeronly/version.h torch/csrc/api/include/torch/version.h)
    foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
      if(EXISTS "${dir}/${header}")
        file(STRINGS "${dir}/${header}" mobilenet_torch_defs
             REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
        if(mobilenet_torch_defs)
          string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3"
                 MOBILENET_TORCH_VERSION "${mobilenet_torch_defs}")
          break()
        endif()
      endif()
    endforeach()
  endforeach()
  set(mobilenet_torch_error "")
  if(MOBILENET_TORCH_VERSION AND MOBILENET_TORCH_VERSION VERSION_LESS 1.13)
    set(mobilenet_torch_error "mobilenet needs LibTorch >= 1.13; found ${MOBILENET_TORCH_VERSION} (${Torch_DIR})")
  endif()
  # A LibTorch found through its CMake package but whose libraries came from another install
  # (TorchConfig searches the system before its own lib/): a mixed build crashes at run time.
  if(TORCH_LIBRARY AND TORCH_INSTALL_PREFIX)
    get_filename_component(mobilenet_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
    get_filename_component(mobilenet_torch_prefix "${TORCH_INSTALL_PREFIX}" ABSOLUTE)
    string(FIND "${mobilenet_torch_lib_dir}/" "${mobilenet_torch_prefix}/" mobilenet_at)
    if(NOT mobilenet_at EQUAL 0)
      set(mobilenet_torch_error "mobilenet: LibTorch's headers are from ${mobilenet_torch_prefix} but its library is ${TORCH_LIBRARY}; put ${mobilenet_torch_prefix} first in CMAKE_PREFIX_PATH (two LibTorch installs on this machine)")
    endif()
  endif()
  if(mobilenet_torch_error)
    if(DEFINED CMAKE_FIND_PACKAGE_NAME)
      set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
      set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "${mobilenet_torch_error}")
      return()
    endif()
    message(FATAL_ERROR "${mobilenet_torch_error}")
  endif()
endif()
mobilenet_find_dependency(Eigen3 3.3 NO_MODULE)
if("data" IN_LIST MOBILENET_COMPONENTS)
  mobilenet_find_dependency(simdjson)
  mobilenet_find_dependency(libjpeg-turbo)
  mobilenet_find_dependency(PNG)
  mobilenet_find_dependency(Threads)
endif()
if("distributed" IN_LIST MOBILENET_COMPONENTS)
  mobilenet_find_dependency(Threads)
  find_path(MOBILENET_GLOO_INCLUDE_DIR gloo/config.h)
  if(NOT MOBILENET_GLOO_INCLUDE_DIR)
    set(msg "mobilenet: component 'distributed' needs Gloo's headers (gloo/config.h; Debian: libgloo-dev)")
    if(DEFINED CMAKE_FIND_PACKAGE_NAME)
      set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
      set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "${msg}")
      return()
    endif()
    message(FATAL_ERROR "${msg}")
  endif()
endif()
# Component onnx: an installed consumer needs nothing more (the writer library carries its
# protobuf inside). Our own build finds what the writer is built from: protoc, the system's
# static protobuf and its headers, onnx.proto (Debian: protobuf-compiler, libprotobuf-dev,
# libonnx-dev), zlib. They are searched outside CMAKE_PREFIX_PATH on purpose: a PyPI LibTorch
# there ships protobuf 3.13 headers and protoc that belong to its own copy.
if(NOT DEFINED CMAKE_FIND_PACKAGE_NAME)
  find_program(MOBILENET_PROTOC protoc NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  find_path(MOBILENET_PROTOBUF_INCLUDE_DIR google/protobuf/message.h NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  find_library(MOBILENET_PROTOBUF_STATIC NAMES libprotobuf.a NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  find_file(MOBILENET_ONNX_PROTO onnx/onnx.proto PATH_SUFFIXES include NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  find_package(ZLIB QUIET)
  set(MOBILENET_HAVE_ONNX OFF)
  foreach(what IN ITEMS MOBILENET_PROTOC MOBILENET_PROTOBUF_INCLUDE_DIR MOBILENET_PROTOBUF_STATIC
                        MOBILENET_ONNX_PROTO)
    if(NOT ${what})
      list(APPEND mobilenet_onnx_missing ${what})
    endif()
  endforeach()
  if(NOT ZLIB_FOUND)
    list(APPEND mobilenet_onnx_missing zlib)
  endif()
  if(mobilenet_onnx_missing)
    message(STATUS "mobilenet: component onnx not built: not found: ${mobilenet_onnx_missing} "
                   "(Debian: protobuf-compiler libprotobuf-dev libonnx-dev zlib1g-dev)")
  else()
    execute_process(COMMAND ${MOBILENET_PROTOC} --version OUTPUT_VARIABLE mobilenet_protoc_version
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(MOBILENET_HAVE_ONNX ON)
    message(STATUS "mobilenet: component onnx (${mobilenet_protoc_version}, ${MOBILENET_ONNX_PROTO}, "
                   "${MOBILENET_PROTOBUF_STATIC} linked in privately)")
  endif()
endif()
