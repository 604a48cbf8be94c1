// Hugging Face tokenizer.json -> TokenizerSpec. Only what byte-level BPE models (GPT-2, Llama-3,
// Qwen2.5, Mistral-Nemo, SmolLM2) use is accepted; anything else is an Error that names it.
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "micromix/error.hpp"
#include "micromix/tokenizer.hpp"
#include "model/pretokenize.hpp"

namespace micromix {

namespace {

using nlohmann::json;

std::string brief(const json& j) {
  std::string s = j.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

const json* find(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}
bool is_null_or_absent(const json* j) { return j == nullptr || j->is_null(); }
bool flag(const json& obj, const char* key, bool dflt) {
  const json* j = find(obj, key);
  if (is_null_or_absent(j)) return dflt;
  MM_CHECK(j->is_boolean(), "'{}' must be true or false, got {}", key, brief(*j));
  return j->get<bool>();
}
std::string type_of(const json& obj) {
  const json* t = find(obj, "type");
  MM_CHECK(t && t->is_string(), "missing 'type' in {}", brief(obj));
  return t->get<std::string>();
}

void check_byte_level(const json& bl, bool want_regex) {
  MM_CHECK(!flag(bl, "add_prefix_space", false), "ByteLevel add_prefix_space=true is not supported");
  MM_CHECK(flag(bl, "use_regex", true) == want_regex, "ByteLevel use_regex={} is not supported here: {}",
           !want_regex, brief(bl));
}

// Maps the pre_tokenizer to one of our named splitters.
std::string pre_name(const json& pre) {
  MM_CHECK(!pre.is_null(), "pre_tokenizer is null: not a byte-level BPE tokenizer");
  std::vector<json> steps;
  if (type_of(pre) == "Sequence") {
    const json* list = find(pre, "pretokenizers");
    MM_CHECK(list && list->is_array(), "Sequence pre_tokenizer without 'pretokenizers' list");
    steps.assign(list->begin(), list->end());
  } else {
    steps.push_back(pre);
  }
  if (steps.size() == 1 && type_of(steps[0]) == "ByteLevel") {
    check_byte_level(steps[0], true);
    return "gpt2";
  }
  if (steps.size() == 2 && type_of(steps[0]) == "Digits" && type_of(steps[1]) == "ByteLevel") {
    MM_CHECK(flag(steps[0], "individual_digits", false), "Digits pre_tokenizer without individual_digits is not supported");
    check_byte_level(steps[1], true);
    return "smollm";
  }
  if (steps.size() == 2 && type_of(steps[0]) == "Split" && type_of(steps[1]) == "ByteLevel") {
    check_byte_level(steps[1], false);
    const json& split = steps[0];
    const json* behavior = find(split, "behavior");
    MM_CHECK(behavior && *behavior == "Isolated", "Split behavior must be Isolated, got {}", brief(split));
    MM_CHECK(!flag(split, "invert", false), "Split invert=true is not supported");
    const json* pattern = find(split, "pattern");
    const json* regex = pattern ? find(*pattern, "Regex") : nullptr;
    MM_CHECK(regex && regex->is_string(), "Split pattern must be {{\"Regex\": ...}}, got {}", brief(split));
    const std::string r = regex->get<std::string>();
    for (auto [name, s] : {std::pair{"gpt2", pretok::Splitter::gpt2}, {"llama3", pretok::Splitter::llama3},
                           {"qwen2", pretok::Splitter::qwen2}, {"tekken", pretok::Splitter::tekken}})
      if (r == pretok::splitter_regex(s)) return name;
    fail("unsupported Split regex {} (known: the gpt2, llama3, qwen2 and tekken patterns)", brief(*regex));
  }
  fail("unsupported pre_tokenizer {}", brief(pre));
}

// Returns the id of the token the template puts before the text, -1 when none.
int32_t template_bos(const json& tp, const std::map<std::string, int32_t>& id_of) {
  const json* single = find(tp, "single");
  MM_CHECK(single && single->is_array(), "TemplateProcessing without 'single'");
  int32_t bos = -1;
  bool seen_text = false;
  for (const json& piece : *single) {
    if (find(piece, "Sequence")) {
      seen_text = true;
      continue;
    }
    const json* st = find(piece, "SpecialToken");
    MM_CHECK(st && find(*st, "id") && find(*st, "id")->is_string(), "bad template piece {}", brief(piece));
    MM_CHECK(!seen_text, "post_processor appends {} after the text: not supported", brief(piece));
    MM_CHECK(bos < 0, "post_processor prepends more than one token: not supported");
    const std::string name = find(*st, "id")->get<std::string>();
    const json* specials = find(tp, "special_tokens");
    const json* entry = specials ? find(*specials, name.c_str()) : nullptr;
    const json* ids = entry ? find(*entry, "ids") : nullptr;
    if (ids && ids->is_array() && ids->size() == 1 && (*ids)[0].is_number_integer()) {
      bos = (*ids)[0].get<int32_t>();
    } else {
      auto it = id_of.find(name);
      MM_CHECK(it != id_of.end(), "post_processor token '{}' is not in the vocabulary", name);
      bos = it->second;
    }
  }
  return bos;
}

TokenizerSpec parse(const json& root) {
  MM_CHECK(root.is_object(), "top level is not an object");
  const json* model = find(root, "model");
  MM_CHECK(model && model->is_object(), "no 'model' object");
  const json* mtype = find(*model, "type");
  MM_CHECK(is_null_or_absent(mtype) || *mtype == "BPE", "model type {} is not BPE", brief(*mtype));
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = find(*model, k);
    MM_CHECK(is_null_or_absent(v) || *v == "", "model.{} is not supported", k);
  }
  const json* dropout = find(*model, "dropout");
  MM_CHECK(is_null_or_absent(dropout) || (dropout->is_number() && dropout->get<double>() == 0.0), "BPE dropout is not supported");
  MM_CHECK(!flag(*model, "byte_fallback", false), "byte_fallback BPE (SentencePiece style) is not supported");

  // Vocabulary: model.vocab plus added_tokens; ids must be dense (0..n-1). Kept in a map by id
  // until checked, so a hostile id allocates nothing.
  const json* vocab = find(*model, "vocab");
  MM_CHECK(vocab && vocab->is_object(), "model.vocab is not an object");
  const json* added = find(root, "added_tokens");
  MM_CHECK(is_null_or_absent(added) || added->is_array(), "added_tokens is not a list");
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> text, type
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    MM_CHECK(it.value().is_number_integer(), "vocab entry '{}' has a non-integer id", it.key());
    const int64_t id = it.value().get<int64_t>();
    MM_CHECK(id >= 0, "vocab id {} of '{}' is negative", id, it.key());
    MM_CHECK(by_id.emplace(id, std::pair{it.key(), 1}).second, "vocab id {} used twice", id);
  }
  if (added && added->is_array())
    for (const json& a : *added) {
      const json* id = find(a, "id");
      const json* content = find(a, "content");
      MM_CHECK(id && id->is_number_integer() && content && content->is_string(), "bad added token {}", brief(a));
      const int64_t i = id->get<int64_t>();
      MM_CHECK(i >= 0, "added token id {} is negative", i);
      const std::string text = content->get<std::string>();
      MM_CHECK(!text.empty(), "added token {} is empty", i);
      // Whitespace absorption and word-boundary rules of added tokens are not implemented:
      // refuse rather than give other ids (Llama-3, Qwen2.5, Mistral-Nemo, SmolLM2 use none).
      for (const char* k : {"lstrip", "rstrip", "single_word"})
        MM_CHECK(!flag(a, k, false), "added token {} '{}' has {}=true: not supported", i, text, k);
      const int32_t type = flag(a, "special", false) ? 3 : 4;
      auto [pos, fresh] = by_id.emplace(i, std::pair{text, type});
      MM_CHECK(fresh || pos->second.first == text, "added token {} '{}' differs from vocab '{}'", i, text, pos->second.first);
      pos->second.second = type;
    }
  MM_CHECK(!by_id.empty(), "empty vocabulary");
  const int64_t size = by_id.rbegin()->first + 1;
  MM_CHECK(static_cast<size_t>(size) == by_id.size(), "token ids are not dense: {} tokens but ids up to {}", by_id.size(), size - 1);

  TokenizerSpec spec;
  spec.model = "gpt2";
  std::map<std::string, int32_t> id_of;
  for (auto& [id, tt] : by_id) {
    spec.tokens.push_back(tt.first);
    spec.token_types.push_back(tt.second);
    id_of.emplace(tt.first, static_cast<int32_t>(id));
  }

  const json* merges = find(*model, "merges");
  MM_CHECK(merges && merges->is_array(), "model.merges is not a list");
  spec.merges.reserve(merges->size());
  for (const json& m : *merges) {
    if (m.is_string()) {
      spec.merges.push_back(m.get<std::string>());
    } else {
      MM_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), "bad merge {}", brief(m));
      const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
      MM_CHECK(a.find(' ') == std::string::npos && !b.empty(), "merge {} has a token with a space", brief(m));
      spec.merges.push_back(a + " " + b);
    }
  }
  spec.ignore_merges = flag(*model, "ignore_merges", false);
  if (const json* unk = find(*model, "unk_token"); !is_null_or_absent(unk)) {
    MM_CHECK(unk->is_string() && id_of.count(unk->get<std::string>()), "unk_token {} not in vocab", brief(*unk));
    spec.unk_id = id_of.at(unk->get<std::string>());
    spec.unk_missing_bytes = true;
  }

  const json* norm = find(root, "normalizer");
  // NFC: accepted, not applied (as llama.cpp); text already in NFC, as most is, encodes the same.
  MM_CHECK(is_null_or_absent(norm) || type_of(*norm) == "NFC", "unsupported normalizer {}", brief(*norm));
  const json* pre = find(root, "pre_tokenizer");
  MM_CHECK(pre, "no pre_tokenizer");
  spec.pre = pre_name(*pre);

  if (const json* post = find(root, "post_processor"); !is_null_or_absent(post)) {
    std::vector<json> steps;
    if (type_of(*post) == "Sequence") {
      const json* list = find(*post, "processors");
      MM_CHECK(list && list->is_array(), "Sequence post_processor without 'processors'");
      steps.assign(list->begin(), list->end());
    } else {
      steps.push_back(*post);
    }
    for (const json& p : steps) {
      const std::string t = type_of(p);
      if (t == "ByteLevel") continue;
      MM_CHECK(t == "TemplateProcessing", "unsupported post_processor {}", brief(p));
      const int32_t bos = template_bos(p, id_of);
      MM_CHECK(bos < size, "post_processor BOS id {} out of range", bos);
      if (bos >= 0) spec.add_bos = true, spec.bos_id = bos;
    }
  }
  return spec;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_json_text(const std::string& json_text) {
  try {
    return parse(json::parse(json_text));
  } catch (const json::exception& e) {
    fail("tokenizer.json: {}", e.what());
  } catch (const Error& e) {
    fail("tokenizer.json: {}", e.what());
  }
}

TokenizerSpec tokenizer_spec_from_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MM_CHECK(f, "tokenizer.json: cannot open '{}'", path);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return tokenizer_spec_from_json_text(ss.str());
  } catch (const Error& e) {
    fail("{} ({})", e.what(), path);
  }
}

}  // namespace micromix
