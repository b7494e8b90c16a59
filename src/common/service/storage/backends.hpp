// Constructors of the concrete stores, for open_store.cpp (callers use open_registrar_store /
// open_verifier_store, which pick one from database_url).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/service/storage/lease_store.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "common/service/storage/verifier_store.hpp"

namespace kl::storage {

std::unique_ptr<RegistrarStore> make_sqlite_registrar_store(const std::filesystem::path& file);
std::unique_ptr<VerifierStore> make_sqlite_verifier_store(const std::filesystem::path& file);
#if KL_WITH_POSTGRES
// `conninfo` is a libpq connection URI; `pool_size` connections are opened at once.
std::unique_ptr<RegistrarStore> make_pg_registrar_store(const std::string& conninfo, std::size_t pool_size);
std::unique_ptr<VerifierStore> make_pg_verifier_store(const std::string& conninfo, std::size_t pool_size);
std::unique_ptr<LeaseStore> make_pg_lease_store(const std::string& conninfo, std::size_t pool_size);
#endif

}  // namespace kl::storage
