# Finds what mobilenet's targets link against, per component. Shared by the build and by the
# installed mobilenetConfig.cmake, so the two can never disagree.
#   core (always):  Torch, Eigen3
#   data:           simdjson, libjpeg-turbo (its libjpeg API), PNG, Threads
#   demo:           data's, and libjpeg-turbo's TurboJPEG (same package)
#   distributed:    Gloo's headers (LibTorch's c10d headers include them), Threads
# In the build tree every component is found; a consumer finds only the ones it asks for.
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
