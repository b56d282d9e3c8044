# What `cmake --install` puts in place, so a user's project does find_package(lockstep) and links
# lockstep::lockstep (examples/resnet):
#   include/lockstep/  the public headers under their source paths (#include "layers/conv2d.h"),
#                      and proto/*.pb.h, which the checkpoint headers include
#   lib/               the static libraries; lib/cmake/lockstep/ the package config
#   bin/lockstep       the command, when it is built
# Test suites and benchmarks have no install rule. The checkpoint library (lockstep::checkpoint) is
# in the package with the generated protobuf code it needs (lockstep::proto), so the package
# requires Protobuf on the user's machine, as building lockstep does. oneDNN and NCCL are found
# again there rather than exported as this machine's paths; MPI, OpenMP, ZLIB, Threads (and CUDA in
# a CUDA build) are found through their own CMake modules. The libraries are static, so the
# private dependencies (MPI, NCCL) are needed when the user's program links.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LOCKSTEP_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/lockstep)
set(LOCKSTEP_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lockstep)

set_target_properties(lockstep_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(lockstep_comm PROPERTIES EXPORT_NAME comm)
set_target_properties(lockstep_layers PROPERTIES EXPORT_NAME layers)
set_target_properties(lockstep_train PROPERTIES EXPORT_NAME train)
set_target_properties(lockstep_checkpoint PROPERTIES EXPORT_NAME checkpoint)
set_target_properties(lockstep_proto PROPERTIES EXPORT_NAME proto)

install(TARGETS lockstep_all lockstep_train lockstep_layers lockstep_comm lockstep_runtime
                lockstep_checkpoint lockstep_proto lockstep_dnnl
        EXPORT lockstepTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR})
install(EXPORT lockstepTargets NAMESPACE lockstep:: DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR})

# Headers. runtime/ops/ (kernel helpers) and comm's backend folders (mpi/, nccl/, self/: only
# comm/factory.cc names them) stay private; no public header includes them.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/ DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR}/runtime
        FILES_MATCHING PATTERN "*.h" PATTERN "ops" EXCLUDE PATTERN "cuda" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/comm/ DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR}/comm
        FILES_MATCHING PATTERN "*.h" PATTERN "mpi" EXCLUDE PATTERN "nccl" EXCLUDE PATTERN "self" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/layers/ DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR}/layers
        FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/launcher/train/ DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR}/launcher/train
        FILES_MATCHING PATTERN "*.h")
get_target_property(lockstep_proto_srcs lockstep_proto SOURCES)
list(FILTER lockstep_proto_srcs INCLUDE REGEX "\\.pb\\.h$")
list(FILTER lockstep_proto_srcs EXCLUDE REGEX "\\.grpc\\.pb\\.h$")
install(FILES ${lockstep_proto_srcs} DESTINATION ${LOCKSTEP_INSTALL_INCLUDEDIR}/proto)

# The command. Its shared libraries outside the system paths (CUDA, NCCL) stay on its RPATH.
if(TARGET lockstep)
  set_target_properties(lockstep PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS lockstep RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Package config: what the installed targets need from the user's machine (see the template).
get_filename_component(LOCKSTEP_DNNL_LIBRARY_DIR "${DNNL_LIBRARY}" DIRECTORY)
set(LOCKSTEP_NCCL_LIBRARY_DIR "")
if(LOCKSTEP_CUDA)  # comm/ links NCCL exactly in CUDA builds
  get_filename_component(LOCKSTEP_NCCL_LIBRARY_DIR "${NCCL_LIBRARY}" DIRECTORY)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lockstepConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/lockstepConfig.cmake
                              INSTALL_DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the interface.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lockstepConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lockstepConfig.cmake ${PROJECT_BINARY_DIR}/lockstepConfigVersion.cmake
        DESTINATION ${LOCKSTEP_INSTALL_CMAKEDIR})
