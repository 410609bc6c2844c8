# Which LibTorch this repository's own build uses, and the Python its tests and benchmarks
# compare against (not installed: a consumer's find_package(mobilenet) never runs this).
#   MOBILENET_PYTHON             the reference Python (torch, torchvision, scikit-learn, PIL)
#   MOBILENET_TORCH_FROM_PYTHON  ON: build against the LibTorch inside that Python's torch
#                                package (the PyPI wheel: LibTorch 2.x, CUDA-enabled)
# The references must come from the same stack as the build (a torchvision parity on 2.11 says
# nothing about 1.13), so a Python whose torch differs from the LibTorch is a configure error.
# Two stacks are supported (README, "Which LibTorch"): Debian's 1.13 (default) and the 2.11
# wheel (`cmake --preset torch2`).
set(MOBILENET_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "Python with torch, torchvision, scikit-learn and PIL, for the reference tests and benchmarks")
option(MOBILENET_TORCH_FROM_PYTHON "Build against MOBILENET_PYTHON's torch (a PyPI wheel)" OFF)

set(MOBILENET_NEEDS_PYTHON OFF)
if(MOBILENET_TORCH_FROM_PYTHON OR MOBILENET_BUILD_TESTS OR MOBILENET_BUILD_BENCHMARKS)
  set(MOBILENET_NEEDS_PYTHON ON)
endif()

if(MOBILENET_NEEDS_PYTHON)
  execute_process(
    COMMAND "${MOBILENET_PYTHON}" -c
      "import os, torch, torchvision; print(torch.__version__); print(torchvision.__version__); print(torch.version.cuda or ''); print(torch.utils.cmake_prefix_path); print(os.path.dirname(torch.__file__))"
    OUTPUT_VARIABLE mobilenet_py_out ERROR_VARIABLE mobilenet_py_err RESULT_VARIABLE mobilenet_py_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT mobilenet_py_rc EQUAL 0)
    string(REGEX REPLACE ".*\n([^\n]+)\n?$" "\\1" mobilenet_py_err "${mobilenet_py_err}")
    message(FATAL_ERROR "mobilenet: MOBILENET_PYTHON=${MOBILENET_PYTHON} cannot import torch and "
      "torchvision (${mobilenet_py_err}). The tests and benchmarks compare against them: run "
      "scripts/install_deps.sh (Debian 1.13) or scripts/install_deps.sh --torch 2.11, or pass "
      "-DMOBILENET_PYTHON=<python>, or configure with -DMOBILENET_BUILD_TESTS=OFF "
      "-DMOBILENET_BUILD_BENCHMARKS=OFF.")
  endif()
  string(REPLACE "\n" ";" mobilenet_py_out "${mobilenet_py_out}")
  list(GET mobilenet_py_out 0 MOBILENET_PY_TORCH_VERSION)
  list(GET mobilenet_py_out 1 MOBILENET_PY_TORCHVISION_VERSION)
  list(GET mobilenet_py_out 2 MOBILENET_PY_TORCH_CUDA)
  list(GET mobilenet_py_out 3 mobilenet_py_cmake_prefix)
  list(GET mobilenet_py_out 4 mobilenet_py_torch_dir)
endif()

if(MOBILENET_TORCH_FROM_PYTHON)
  # The wheel's own lib/ must come before the system's: TorchConfig's find_library searches
  # CMAKE_PREFIX_PATH first and its own folder last, so a Debian libtorch would win otherwise.
  list(PREPEND CMAKE_PREFIX_PATH "${mobilenet_py_torch_dir}" "${mobilenet_py_cmake_prefix}")
  if(MOBILENET_PY_TORCH_CUDA)
    # A CUDA wheel needs a toolkit of the same major version (libcudart.so.<major>) to compile.
    if(NOT CMAKE_CUDA_COMPILER)
      find_program(mobilenet_nvcc nvcc PATHS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
      if(mobilenet_nvcc)
        set(CMAKE_CUDA_COMPILER "${mobilenet_nvcc}" CACHE FILEPATH "CUDA compiler")
      endif()
    endif()
    set(mobilenet_nvcc_version "")
    if(CMAKE_CUDA_COMPILER)
      execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --version OUTPUT_VARIABLE mobilenet_nvcc_out
                      RESULT_VARIABLE mobilenet_nvcc_rc)
      string(REGEX MATCH "release ([0-9]+\\.[0-9]+)" _ "${mobilenet_nvcc_out}")
      set(mobilenet_nvcc_version "${CMAKE_MATCH_1}")
    endif()
    string(REGEX MATCH "^[0-9]+" mobilenet_want_major "${MOBILENET_PY_TORCH_CUDA}")
    string(REGEX MATCH "^[0-9]+" mobilenet_have_major "${mobilenet_nvcc_version}")
    if(NOT mobilenet_have_major STREQUAL mobilenet_want_major)
      if(mobilenet_nvcc_version)
        set(mobilenet_found "CUDA ${mobilenet_nvcc_version} (${CMAKE_CUDA_COMPILER})")
      else()
        set(mobilenet_found "no nvcc")
      endif()
      message(FATAL_ERROR "mobilenet: torch ${MOBILENET_PY_TORCH_VERSION} was built with CUDA "
        "${MOBILENET_PY_TORCH_CUDA} and needs a CUDA ${mobilenet_want_major}.x toolkit; found "
        "${mobilenet_found}. Install the matching toolkit, pass -DCMAKE_CUDA_COMPILER=<nvcc>, or "
        "use a CPU-only torch wheel.")
    endif()
    get_filename_component(mobilenet_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(mobilenet_cuda_root "${mobilenet_cuda_root}" DIRECTORY)
    set(CUDAToolkit_ROOT "${mobilenet_cuda_root}" CACHE PATH "CUDA toolkit root")
  endif()
endif()

# After find_package(Torch): the reference Python's torch and torchvision must match it.
macro(mobilenet_check_python_stack)
  if(MOBILENET_NEEDS_PYTHON AND MOBILENET_TORCH_VERSION)
    string(REGEX MATCH "^[0-9]+\\.[0-9]+" mobilenet_lib_mm "${MOBILENET_TORCH_VERSION}")
    string(REGEX MATCH "^[0-9]+\\.[0-9]+" mobilenet_py_mm "${MOBILENET_PY_TORCH_VERSION}")
    if(NOT mobilenet_lib_mm STREQUAL mobilenet_py_mm)
      message(FATAL_ERROR "mobilenet: the build uses LibTorch ${MOBILENET_TORCH_VERSION} but "
        "MOBILENET_PYTHON=${MOBILENET_PYTHON} has torch ${MOBILENET_PY_TORCH_VERSION}; the "
        "references must come from the same stack. Debian 1.13: /usr/bin/python3 "
        "(python3-torch); LibTorch 2.11: .venv-torch2/bin/python (cmake --preset torch2).")
    endif()
    # torchvision's release that pairs with torch: 0.(minor+1) for torch 1.x, 0.(minor+15) for 2.x.
    string(REPLACE "." ";" mobilenet_parts "${mobilenet_py_mm}")
    list(GET mobilenet_parts 0 mobilenet_major)
    list(GET mobilenet_parts 1 mobilenet_minor)
    if(mobilenet_major EQUAL 1)
      math(EXPR mobilenet_tv_minor "${mobilenet_minor} + 1")
    else()
      math(EXPR mobilenet_tv_minor "${mobilenet_minor} + 15")
    endif()
    string(REGEX MATCH "^[0-9]+\\.[0-9]+" mobilenet_tv_mm "${MOBILENET_PY_TORCHVISION_VERSION}")
    if(NOT mobilenet_tv_mm STREQUAL "0.${mobilenet_tv_minor}")
      message(FATAL_ERROR "mobilenet: torchvision ${MOBILENET_PY_TORCHVISION_VERSION} does not "
        "match torch ${MOBILENET_PY_TORCH_VERSION} (needs torchvision 0.${mobilenet_tv_minor}.x) "
        "in MOBILENET_PYTHON=${MOBILENET_PYTHON}")
    endif()
    message(STATUS "mobilenet: LibTorch ${MOBILENET_TORCH_VERSION}; references: ${MOBILENET_PYTHON} "
      "(torch ${MOBILENET_PY_TORCH_VERSION}, torchvision ${MOBILENET_PY_TORCHVISION_VERSION})")
  endif()
endmacro()
