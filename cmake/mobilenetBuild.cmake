# Helpers for this repository's own tests, examples and benchmarks (not installed).
#
# Every program here includes LibTorch, whose headers dominate compile time, so all of them
# reuse ONE precompiled header built by mobilenet_pch. Keep flags identical across targets:
# REUSE_FROM requires it.
# MOBILENET_PYTHON (the reference Python) is set in mobilenetTorch.cmake.
set(MOBILENET_WARNINGS -Wall -Wextra)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # LibTorch 1.13 headers trip these under clang; they are not ours.
  list(APPEND MOBILENET_WARNINGS -Wno-unused-parameter)
endif()

add_library(mobilenet_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(mobilenet_pch PUBLIC mobilenet_demo mobilenet_distributed)
target_compile_options(mobilenet_pch PRIVATE ${MOBILENET_WARNINGS})
target_precompile_headers(mobilenet_pch PRIVATE <torch/torch.h>)

# mobilenet_program(<name> SOURCES ... [LIBS ...]) — an executable using the shared PCH.
function(mobilenet_program name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE mobilenet_demo mobilenet_distributed ${ARG_LIBS})
  target_compile_options(${name} PRIVATE ${MOBILENET_WARNINGS})
  target_precompile_headers(${name} REUSE_FROM mobilenet_pch)
endfunction()
