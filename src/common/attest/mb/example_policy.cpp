#include "common/attest/mb/example_policy.hpp"

#include <stdexcept>

#include "common/attest/mb/full_match.hpp"
#include "common/attest/mb/python_repr.hpp"

namespace kl::mb::detail {
namespace {

using nlohmann::json;
using namespace kl::mb::tree;

constexpr const char* kEfiGlobal = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
constexpr const char* kEfiGlobalSwapped = "61dfe48b-ca93-d211-aa0d-00e098032b8c";
constexpr const char* kImageSecurityDb = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
constexpr const char* kImageSecurityDbSwapped = "cbb219d7-3a3d-9645-a3bc-dad00e67656f";
constexpr const char* kShim = "605dab50-e046-4300-abb6-3dd810dd8b23";
constexpr const char* kShimSwapped = "50ab5d60-46e0-0043-abb6-3dd810dd8b23";
constexpr const char* kX509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
constexpr const char* kX509Swapped = "a159c0a5-e494-a74a-87b5-ab155c2bf072";
constexpr const char* kSha256 = "c1c41626-504c-4092-aca9-41f936934328";
constexpr const char* kSha256Swapped = "2616c4c1-4c50-9240-aca9-41f936934328";

[[noreturn]] void fail(const std::string& m) { throw std::invalid_argument(m); }

void type_test(const json& v, json::value_t t, const char* tname) {
  bool ok = v.type() == t || (t == json::value_t::number_integer && v.is_number_integer());
  if (!ok) fail(repr(v) + " is a " + python_type(v) + " rather than " + tname);
}

void hex_test(const json& v) {
  static const FullMatch kHex("0x[0-9a-f]+");
  if (v.is_string() && kHex.matches(v.get_ref<const std::string&>())) return;
  fail(repr(v) + " is not 0x followed by some lowercase hex digits");
}

void str_test(const json& v) { type_test(v, json::value_t::string, "<class 'str'>"); }
void dict_test(const json& v) { type_test(v, json::value_t::object, "<class 'dict'>"); }
void list_test(const json& v) { type_test(v, json::value_t::array, "<class 'list'>"); }

// tests.obj_test: a dict whose listed fields pass their checks and are all present.
void obj_test(const json& v, const std::vector<std::pair<std::string, void (*)(const json&)>>& fields) {
  dict_test(v);
  for (const auto& [k, val] : v.items())
    for (const auto& [name, check] : fields)
      if (name == k) check(val);
  std::vector<std::string> missing;
  for (const auto& [name, check] : fields)
    if (!v.contains(name)) missing.push_back(name);
  if (!missing.empty()) fail(repr(v) + " lacks fields " + repr_str_set(missing));
}

void digest_type_test(const json& v) {
  dict_test(v);
  for (const auto& [k, val] : v.items()) hex_test(val);
}

void digest_list_test(const json& v) {
  list_test(v);
  for (const auto& e : v) digest_type_test(e);
}

std::string strip0x(const json& v) {
  const std::string s = v.is_string() ? v.get<std::string>() : std::string();
  if (!v.is_string() || s.rfind("0x", 0) != 0) fail(repr(v) + " does not start with 0x");
  return s.substr(2);
}

Digest digest_strip0x(const json& d) {
  digest_type_test(d);
  Digest out;
  for (const auto& [alg, val] : d.items()) out.push_back({alg, strip0x(val)});
  return out;
}

std::vector<Digest> digests_strip0x(const json& ds) {
  list_test(ds);
  std::vector<Digest> out;
  for (const auto& d : ds) out.push_back(digest_strip0x(d));
  return out;
}

std::vector<Signature> sigs_strip0x(const json& sigs) {
  if (!sigs.is_array() && !sigs.is_object() && !sigs.is_string())
    fail(repr(sigs) + " is a " + python_type(sigs) + " rather than typing.Iterable");
  if (!sigs.is_array()) fail(repr(sigs) + " is a " + python_type(sigs) + " rather than <class 'dict'>");
  std::vector<Signature> out;
  for (const auto& s : sigs) {
    obj_test(s, {{"SignatureOwner", str_test}, {"SignatureData", str_test}});
    out.push_back({s["SignatureOwner"].get<std::string>(), strip0x(s["SignatureData"])});
  }
  return out;
}

}  // namespace

bool truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return v.get<bool>();
    case json::value_t::string: return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !v.empty();
    case json::value_t::number_float: return v.get<double>() != 0.0;
    case json::value_t::number_unsigned: return v.get<std::uint64_t>() != 0;
    case json::value_t::number_integer: return v.get<std::int64_t>() != 0;
    default: return true;
  }
}

TestPtr example_refstate_to_test(const json& refstate_in) {
  if (!refstate_in.is_object())
    fail("Expected refstate to be a Python dict but instead got this Python value: " + repr(refstate_in));
  const json& refstate = refstate_in;
  static const json kEmptyList = json::array();
  const bool has_sb = truthy(refstate.value("has_secureboot", json(true)));
  const json kernels = refstate.value("kernels", json(nullptr));
  if (!kernels.is_array()) fail("refstate['kernels'] is " + repr(kernels) + " instead of a list");
  for (const auto& k : kernels) {
    if (has_sb)
      obj_test(k, {{"shim_authcode_sha256", hex_test}, {"grub_authcode_sha256", hex_test},
                   {"kernel_authcode_sha256", hex_test}, {"initrd_plain_sha256", hex_test},
                   {"kernel_cmdline", str_test}});
    else
      obj_test(k, {{"shim_authcode_sha256", hex_test}, {"grub_authcode_sha256", hex_test},
                   {"vmlinuz_plain_sha256", hex_test}, {"initrd_plain_sha256", hex_test},
                   {"kernel_cmdline", str_test}});
  }
  if (!refstate.contains("scrtm_and_bios") || refstate["scrtm_and_bios"].is_null())
    fail("refstate['scrtm_and_bios'] is missing");
  const json& sab = refstate.at("scrtm_and_bios");
  list_test(sab);
  for (const auto& a : sab) obj_test(a, {{"scrtm", digest_type_test}, {"platform_firmware", digest_list_test}});

  std::vector<TestPtr> sab_alts;
  for (const auto& a : sab) {
    std::vector<TestPtr> pf;
    for (const auto& p : a.at("platform_firmware")) pf.push_back(digest(digest_strip0x(p)));
    sab_alts.push_back(all_of({field("s_crtms", tuple({digest(digest_strip0x(a.at("scrtm")))})),
                               field("platform_firmware_blobs", tuple(std::move(pf)))}));
  }
  TestPtr scrtm_and_bios_test = any_of(std::move(sab_alts));

  for (const char* req : {"pk", "kek", "db", "dbx", "mokdig", "mokxdig"})
    if (!refstate.contains(req)) fail(std::string("refstate lacks ") + req);
  // Upstream defaults a missing vendor_db to [] (by writing it into the refstate).
  const json& vendor_db_ref = refstate.contains("vendor_db") ? refstate["vendor_db"] : kEmptyList;

  auto dispatcher = std::make_shared<Dispatcher>(std::vector<std::string>{"PCRIndex", "EventType"});
  auto vd_driver_config = std::make_shared<VariableDispatch>();
  auto vd_authority = std::make_shared<VariableDispatch>();

  auto sha256_of = [](const json& kernel, const char* key) { return digest({{"sha256", strip0x(kernel.at(key))}}); };
  std::vector<TestPtr> kernel_alts;
  for (const auto& k : kernels) {
    TestPtr bsa;
    if (!has_sb) {
      bsa = tuple({sha256_of(k, "shim_authcode_sha256"), sha256_of(k, "grub_authcode_sha256")});
    } else {
      bsa = any_of({tuple({sha256_of(k, "shim_authcode_sha256"), sha256_of(k, "grub_authcode_sha256"),
                           sha256_of(k, "kernel_authcode_sha256")}),
                    tuple({sha256_of(k, "shim_authcode_sha256"), sha256_of(k, "grub_authcode_sha256"),
                           sha256_of(k, "kernel_authcode_sha256"), sha256_of(k, "kernel_authcode_sha256")})});
    }
    TestPtr vmlinuz = has_sb ? accept_all() : sha256_of(k, "vmlinuz_plain_sha256");
    kernel_alts.push_back(fields({{"bsas", bsa},
                                  {"ipl9s", tuple({sha256_of(k, "initrd_plain_sha256")})},
                                  {"vmlinuz", tuple({vmlinuz})},
                                  {"kernel_cmdlines",
                                   tuple({regexp("kernel_cmdline: " + k.at("kernel_cmdline").get<std::string>())})}}));
  }
  auto events_final = std::make_shared<DelayToFields>(
      all_of({any_of(std::move(kernel_alts)), scrtm_and_bios_test}),
      std::vector<std::string>{"kernel_cmdlines", "bsas", "ipl9s", "vmlinuz", "s_crtms", "platform_firmware_blobs"});

  auto key = [](int pcr, const char* type) { return std::vector<json>{json(pcr), json(type)}; };
  dispatcher->set(key(0, "EV_NO_ACTION"), once(accept_all()));
  dispatcher->set(key(1, "EV_CPU_MICROCODE"), once(accept_all()));
  dispatcher->set(key(1, "EV_EFI_HANDOFF_TABLES"), once(accept_all()));
  dispatcher->set(key(1, "EV_EFI_HANDOFF_TABLES2"), once(accept_all()));
  dispatcher->set(key(0, "EV_S_CRTM_VERSION"), events_final->get("s_crtms"));
  dispatcher->set(key(0, "EV_EFI_PLATFORM_FIRMWARE_BLOB"), events_final->get("platform_firmware_blobs"));
  dispatcher->set(key(0, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"), events_final->get("platform_firmware_blobs"));
  dispatcher->set(key(7, "EV_EFI_VARIABLE_DRIVER_CONFIG"), vd_driver_config);

  TestPtr secure_boot_test = field("Enabled", string_equal(has_sb ? "Yes" : "No"));
  vd_driver_config->set(kEfiGlobalSwapped, "SecureBoot", secure_boot_test);
  vd_driver_config->set(kEfiGlobal, "SecureBoot", secure_boot_test);

  auto subset_test = [&](const char* name) {
    if (!has_sb && !truthy(refstate.at(name))) return once(accept_all());
    auto sigs = sigs_strip0x(refstate.at(name));
    return once(any_of({key_subset(kX509Swapped, sigs), key_subset(kX509, sigs)}));
  };
  TestPtr pk_test = subset_test("pk");
  vd_driver_config->set(kEfiGlobalSwapped, "PK", pk_test);
  vd_driver_config->set(kEfiGlobal, "PK", pk_test);
  TestPtr kek_test = subset_test("kek");
  vd_driver_config->set(kEfiGlobalSwapped, "KEK", kek_test);
  vd_driver_config->set(kEfiGlobal, "KEK", kek_test);

  auto multi_test = [&](const json& list) {
    if (!has_sb && !truthy(list)) return once(accept_all());
    auto sigs = sigs_strip0x(list);
    return once(any_of({key_subset_multi({kX509Swapped, kSha256Swapped}, sigs),
                        key_subset_multi({kX509, kSha256}, sigs)}));
  };
  TestPtr db_test = multi_test(refstate.at("db"));
  vd_driver_config->set(kImageSecurityDbSwapped, "db", db_test);
  vd_driver_config->set(kImageSecurityDb, "db", db_test);
  TestPtr vendor_db_test = multi_test(vendor_db_ref);
  vd_driver_config->set(kImageSecurityDbSwapped, "vendor_db", vendor_db_test);
  vd_driver_config->set(kImageSecurityDb, "vendor_db", vendor_db_test);

  TestPtr dbx_test;
  if (!has_sb && !truthy(refstate.at("dbx"))) {
    dbx_test = once(accept_all());
  } else {
    auto sigs = sigs_strip0x(refstate.at("dbx"));
    dbx_test = once(any_of({key_superset(kSha256Swapped, sigs), key_superset(kSha256, sigs)}));
  }
  vd_driver_config->set(kImageSecurityDbSwapped, "dbx", dbx_test);
  vd_driver_config->set(kImageSecurityDb, "dbx", dbx_test);

  dispatcher->set(key(7, "EV_EFI_VARIABLE_AUTHORITY"), vd_authority);
  TestPtr vd_db_test = once(accept_all());
  vd_authority->set(kImageSecurityDbSwapped, "db", vd_db_test);
  vd_authority->set(kImageSecurityDb, "db", vd_db_test);
  TestPtr vendor_db_authority_test = (!has_sb && !truthy(vendor_db_ref))
                                         ? once(accept_all())
                                         : once(iterate(signature_set_member(sigs_strip0x(vendor_db_ref))));
  vd_authority->set(kImageSecurityDbSwapped, "vendor_db", vendor_db_authority_test);
  vd_authority->set(kImageSecurityDb, "vendor_db", vendor_db_authority_test);
  TestPtr sbat = once(accept_all());
  vd_authority->set(kShimSwapped, "SbatLevel", sbat);
  vd_authority->set(kShim, "SbatLevel", sbat);
  TestPtr shim = once(accept_all());
  vd_authority->set(kShimSwapped, "Shim", shim);
  vd_authority->set(kShim, "Shim", shim);
  vd_authority->set(kShim, "MokListTrusted",
                    once(any_of({field("Enabled", string_equal("Yes")), field("Enabled", string_equal("No"))})));
  vd_authority->set(kShim, "MokListRT", once(accept_all()));

  dispatcher->set(key(2, "EV_EFI_BOOT_SERVICES_DRIVER"), accept_all());
  dispatcher->set(key(1, "EV_EFI_VARIABLE_BOOT"),
                  any_of({variable(kEfiGlobalSwapped, "BootOrder|Boot[0-9a-fA-F]+", accept_all()),
                          variable(kEfiGlobal, "BootOrder|Boot[0-9a-fA-F]+", accept_all())}));
  dispatcher->set(key(1, "EV_PLATFORM_CONFIG_FLAGS"), any_of({once(accept_all()), once(accept_all()),
                                                               once(accept_all()), once(accept_all())}));
  dispatcher->set(key(4, "EV_EFI_ACTION"), ev_efi_action(4));
  for (int pcr = 0; pcr < 8; ++pcr) dispatcher->set(key(pcr, "EV_SEPARATOR"), ev_separator());
  dispatcher->set(key(4, "EV_EFI_BOOT_SERVICES_APPLICATION"), events_final->get("bsas"));
  auto ipl_string = [](TestPtr t) { return field("Event", field("String", std::move(t))); };
  dispatcher->set(key(14, "EV_IPL"),
                  any_of({all_of({ipl_string(string_equal("MokList")), digests(digests_strip0x(refstate.at("mokdig")))}),
                          all_of({ipl_string(string_equal("MokListX")), digests(digests_strip0x(refstate.at("mokxdig")))}),
                          all_of({ipl_string(string_equal("MokListTrusted")), once(accept_all())})}));
  dispatcher->set(key(9, "EV_IPL"),
                  any_of({ipl_string(regexp(".*/loader/entries.*")), ipl_string(regexp(".*/grub.*")),
                          all_of({ipl_string(regexp(".*/vmlinuz.*")), events_final->get("vmlinuz")}),
                          all_of({ipl_string(any_of({regexp(".*/initrd.*"), regexp(".*/initramfs.*")})),
                                  events_final->get("ipl9s")})}));
  dispatcher->set(key(8, "EV_IPL"),
                  ipl_string(any_of({regexp("grub_cmd: .*", true),
                                     all_of({regexp("kernel_cmdline: .*"), events_final->get("kernel_cmdlines")})})));
  dispatcher->set(key(5, "EV_EFI_ACTION"), ev_efi_action(5));
  dispatcher->set(key(1, "EV_EFI_ACTION"), ev_efi_action(1));
  dispatcher->set(key(5, "EV_EFI_GPT_EVENT"), once(accept_all()));

  return field("events", all_of({events_final->initializer(), iterate(dispatcher, true), events_final}), false);
}

}  // namespace kl::mb::detail
