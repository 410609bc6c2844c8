# Finds what mobilenet's targets link against. Shared by the build and by the installed
# mobilenetConfig.cmake, so the two can never disagree.
include(CMakeFindDependencyMacro)
find_dependency(Torch)
find_dependency(Eigen3 3.3 NO_MODULE)
find_dependency(simdjson)
find_dependency(libjpeg-turbo)
find_dependency(PNG)
find_dependency(Threads)
# Debian's libjpeg-turbo config declares static targets whose archives it does not ship;
# we only use the shared turbojpeg target.
