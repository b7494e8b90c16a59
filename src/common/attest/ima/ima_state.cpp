#include "common/attest/ima/ima_state.hpp"

#include "common/attest/parse_error.hpp"

namespace kl::ima {

void ImaState::reset() {
  next_entry = 0;
  pcr10.reset();
  bank.reset();
  boottime = 0;
  learned_keyrings = ImaKeyrings();
  quote_progress.reset();
}

nlohmann::json ImaState::to_json() const {
  nlohmann::json j;
  j["next_ima_ml_entry"] = next_entry;
  j["pcr10"] = pcr10 ? nlohmann::json(hex_encode(*pcr10)) : nlohmann::json(nullptr);
  j["bank"] = bank ? nlohmann::json(std::string(crypto::hash_name(*bank))) : nlohmann::json(nullptr);
  j["boottime"] = boottime;
  j["learned_keyrings"] = learned_keyrings.to_json();
  j["quote_progress"] = quote_progress ? nlohmann::json::array({quote_progress->first, quote_progress->second})
                                       : nlohmann::json(nullptr);
  return j;
}

ImaState ImaState::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ParseError("IMA state: not a JSON object");
  ImaState s;
  try {
    s.next_entry = j.value("next_ima_ml_entry", std::uint64_t{0});
    s.boottime = j.value("boottime", std::int64_t{0});
    if (j.contains("pcr10") && !j["pcr10"].is_null()) {
      auto b = hex_decode(j["pcr10"].get<std::string>());
      if (!b) throw ParseError("IMA state: pcr10 is not hex");
      s.pcr10 = std::move(*b);
    }
    if (j.contains("bank") && !j["bank"].is_null()) {
      auto alg = crypto::hash_from_name(j["bank"].get<std::string>());
      if (!alg) throw ParseError("IMA state: unknown bank");
      s.bank = *alg;
    }
    if (s.pcr10 && (!s.bank || s.pcr10->size() != crypto::digest_size(*s.bank)))
      throw ParseError("IMA state: pcr10 does not fit its bank");
    if (j.contains("learned_keyrings") && j["learned_keyrings"].is_object())
      s.learned_keyrings = ImaKeyrings::from_json(j["learned_keyrings"]);
    if (j.contains("quote_progress") && !j["quote_progress"].is_null()) {
      const auto& q = j["quote_progress"];
      if (!q.is_array() || q.size() != 2) throw ParseError("IMA state: quote_progress must be [match, length]");
      s.quote_progress = std::make_pair(q[0].get<std::int64_t>(), q[1].get<std::int64_t>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw ParseError(std::string("IMA state: ") + e.what());
  }
  return s;
}

}  // namespace kl::ima
