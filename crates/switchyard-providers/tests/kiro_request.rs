//! Anthropic Messages → Kiro request translation (spec §2.6), rule by rule. Pure: no server.

use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_providers::exec::kiro::{
    AGENTIC_SYSTEM_TEXT, BuildOptions, MAX_TOOL_DESCRIPTION_BYTES, TRUNCATION_MARK, build, model_id,
    truncate_description,
};

const NOW: &str = "2026-03-04 05:06:07 +00:00";

fn translate_with(body: Value, model: &str, profile_arn: Option<&str>) -> Result<Value, String> {
    let neutral =
        Dialect::AnthropicMessages.request_to_ir(body.to_string().as_bytes(), model).map_err(|e| e.to_string())?;
    let options = BuildOptions { model, origin: "AI_EDITOR", profile_arn, now: NOW, conversation_id: "conv-1" };
    let built = build(&neutral, &options).map_err(|e| e.to_string())?;
    assert!(built.input_chars > 0);
    Ok(serde_json::to_value(&built.request).unwrap())
}

fn translate(body: Value) -> Value {
    translate_with(body, "kiro-claude-sonnet-4-5", None).expect("translates")
}

fn messages(messages: Value) -> Value {
    json!({"model": "kiro-claude-sonnet-4-5", "max_tokens": 100, "messages": messages})
}

fn current(request: &Value) -> &Value {
    &request["conversationState"]["currentMessage"]["userInputMessage"]
}

fn history(request: &Value) -> &Vec<Value> {
    request["conversationState"]["history"].as_array().unwrap()
}

#[test]
fn a_single_user_message_is_the_current_message() {
    let request =
        translate(json!({"model": "kiro-claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}));
    assert_eq!(
        request,
        json!({"conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": "conv-1",
            "currentMessage": {"userInputMessage": {"content": "Hi", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
            "history": [],
        }})
    );
}

#[test]
fn models_map_to_kiro_model_ids() {
    for (model, id) in [
        ("kiro-claude-opus-4-5", "claude-opus-4.5"),
        ("kiro-claude-opus-4-5-agentic", "claude-opus-4.5"),
        ("claude-opus-4.5", "claude-opus-4.5"),
        ("kiro-claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5-chat", "claude-sonnet-4.5"),
        ("kiro-claude-sonnet-4", "claude-sonnet-4"),
        ("kiro-claude-sonnet-4-agentic", "claude-sonnet-4"),
        ("kiro-claude-haiku-4-5", "claude-haiku-4.5"),
        ("amazonq-auto", "auto"),
        ("auto", "auto"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet-20250219"),
        ("kiro-claude-sonnet-3-7", "claude-3-7-sonnet-20250219"),
        ("something-else", "claude-sonnet-4.5"),
    ] {
        assert_eq!(model_id(model), id, "{model}");
    }
}

#[test]
fn adjacent_same_role_messages_merge_and_history_alternates() {
    let request = translate(messages(json!([
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "second"},
        {"role": "user", "content": [{"type": "text", "text": "third"}, {"type": "text", "text": "fourth"}]},
        {"role": "assistant", "content": "again"},
        {"role": "assistant", "content": "and again"},
        {"role": "user", "content": "last"},
    ])));
    let history = history(&request);
    assert_eq!(history.len(), 4);
    assert_eq!(history[0]["userInputMessage"]["content"], "first");
    assert_eq!(history[0]["userInputMessage"]["modelId"], "claude-sonnet-4.5");
    assert_eq!(history[0]["userInputMessage"]["origin"], "AI_EDITOR");
    assert_eq!(history[1], json!({"assistantResponseMessage": {"content": "answer"}}));
    assert_eq!(history[2]["userInputMessage"]["content"], "second\n\nthird\nfourth");
    assert_eq!(history[3]["assistantResponseMessage"]["content"], "again\n\nand again");
    assert_eq!(current(&request)["content"], "last");
}

#[test]
fn an_assistant_tail_goes_to_history_and_continue_is_sent() {
    let request = translate(messages(json!([
        {"role": "user", "content": "write a poem"},
        {"role": "assistant", "content": "Roses are"},
    ])));
    let history = history(&request);
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["assistantResponseMessage"]["content"], "Roses are");
    assert_eq!(current(&request)["content"], "Continue");
}

#[test]
fn empty_content_becomes_continue_or_tool_results_provided() {
    let request = translate(messages(json!([{"role": "user", "content": "  "}])));
    assert_eq!(current(&request)["content"], "Continue");

    let request = translate(messages(json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ])));
    let current = current(&request);
    assert_eq!(current["content"], "Tool results provided.");
    assert_eq!(
        current["userInputMessageContext"]["toolResults"],
        json!([{"content": [{"text": "sunny"}], "status": "success", "toolUseId": "t1"}])
    );
    let history = history(&request);
    assert_eq!(
        history[1]["assistantResponseMessage"],
        json!({"content": "Continue", "toolUses": [{"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}]})
    );
}

#[test]
fn tool_results_keep_their_error_status_and_history_results_stay_in_history() {
    let request = translate(messages(json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "run", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [{"type": "text", "text": "boom"}]},
            {"type": "text", "text": "it failed"}
        ]},
        {"role": "assistant", "content": "sorry"},
        {"role": "user", "content": "ok"},
    ])));
    let history = history(&request);
    let results = &history[2]["userInputMessage"]["userInputMessageContext"]["toolResults"];
    assert_eq!(results, &json!([{"content": [{"text": "boom"}], "status": "error", "toolUseId": "t1"}]));
    assert_eq!(history[2]["userInputMessage"]["content"], "it failed");
    assert!(current(&request).get("userInputMessageContext").is_none());
}

#[test]
fn duplicate_tool_use_ids_are_dropped() {
    let request = translate(messages(json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "a", "input": {"n": 1}},
            {"type": "tool_use", "id": "t1", "name": "a", "input": {"n": 2}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "t1", "content": "two"}
        ]},
    ])));
    let uses = &history(&request)[1]["assistantResponseMessage"]["toolUses"];
    assert_eq!(uses, &json!([{"toolUseId": "t1", "name": "a", "input": {"n": 1}}]));
    let results = &current(&request)["userInputMessageContext"]["toolResults"];
    assert_eq!(results.as_array().unwrap().len(), 1);
    assert_eq!(results[0]["content"][0]["text"], "one");
}

#[test]
fn tools_go_into_the_current_context_except_for_chat_models() {
    let body = json!({
        "model": "kiro-claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"name": "weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "noop", "input_schema": {"type": "object"}}
        ],
    });
    let request = translate(body.clone());
    assert_eq!(
        current(&request)["userInputMessageContext"]["tools"],
        json!([
            {"toolSpecification": {"name": "weather", "description": "Weather by city", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
            {"toolSpecification": {"name": "noop", "description": "noop", "inputSchema": {"json": {"type": "object"}}}}
        ])
    );
    let chat = translate_with(body, "kiro-claude-sonnet-4-5-chat", None).unwrap();
    assert!(current(&chat).get("userInputMessageContext").is_none(), "{chat}");
}

#[test]
fn long_tool_descriptions_are_cut_at_a_character_boundary() {
    let long = "é".repeat(MAX_TOOL_DESCRIPTION_BYTES); // 2 bytes each
    let cut = truncate_description(&long, MAX_TOOL_DESCRIPTION_BYTES);
    assert!(cut.len() <= MAX_TOOL_DESCRIPTION_BYTES, "{}", cut.len());
    assert!(cut.ends_with(TRUNCATION_MARK));
    assert!(cut.trim_end_matches(TRUNCATION_MARK).chars().all(|c| c == 'é'));
    assert_eq!(truncate_description("short", MAX_TOOL_DESCRIPTION_BYTES), "short");
    let exact = "a".repeat(MAX_TOOL_DESCRIPTION_BYTES);
    assert_eq!(truncate_description(&exact, MAX_TOOL_DESCRIPTION_BYTES), exact);

    let body = json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "big", "description": long, "input_schema": {"type": "object"}}],
    });
    let request = translate(body);
    let sent =
        current(&request)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"].as_str().unwrap();
    assert_eq!(sent, cut);
}

#[test]
fn the_system_prompt_is_inlined_with_the_time() {
    let request = translate(json!({
        "model": "kiro-claude-sonnet-4-5",
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "Hi"}],
    }));
    assert_eq!(
        current(&request)["content"],
        format!(
            "--- SYSTEM PROMPT ---\n[Context: Current time is {NOW}]\n\nBe brief.\n\nBe kind.\n--- END SYSTEM PROMPT ---\n\nHi"
        )
    );
    assert_eq!(history(&request)[0]["userInputMessage"]["content"], "first", "only the current message carries it");
}

#[test]
fn thinking_appends_its_hint_and_agentic_models_their_protocol() {
    let request = translate(json!({
        "model": "m", "max_tokens": 20000,
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "messages": [{"role": "user", "content": "Hi"}],
    }));
    let content = current(&request)["content"].as_str().unwrap().to_owned();
    assert!(
        content.ends_with(
            "<thinking_mode>interleaved</thinking_mode><max_thinking_length>4096</max_thinking_length>\n--- END SYSTEM PROMPT ---\n\nHi"
        ),
        "{content}"
    );
    let adaptive = translate(
        json!({"model": "m", "thinking": {"type": "adaptive"}, "messages": [{"role": "user", "content": "Hi"}]}),
    );
    assert!(
        current(&adaptive)["content"].as_str().unwrap().contains("<max_thinking_length>16000</max_thinking_length>")
    );
    let disabled = translate(
        json!({"model": "m", "thinking": {"type": "disabled"}, "messages": [{"role": "user", "content": "Hi"}]}),
    );
    assert_eq!(current(&disabled)["content"], "Hi");

    let agentic = translate_with(
        json!({"model": "kiro-claude-sonnet-4-5-agentic", "messages": [{"role": "user", "content": "Hi"}]}),
        "kiro-claude-sonnet-4-5-agentic",
        None,
    )
    .unwrap();
    let content = current(&agentic)["content"].as_str().unwrap();
    assert!(content.starts_with("--- SYSTEM PROMPT ---\n[Context: Current time is "), "{content}");
    assert!(content.contains(AGENTIC_SYSTEM_TEXT));
    assert_eq!(current(&agentic)["modelId"], "claude-sonnet-4.5");
}

#[test]
fn images_are_sent_inline_and_urls_are_refused() {
    let request = translate(messages(json!([{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpg", "data": "/9j/4AAQ"}},
        {"type": "text", "text": "what is this?"}
    ]}])));
    assert_eq!(
        current(&request)["images"],
        json!([{"format": "png", "source": {"bytes": "iVBORw0KGgo="}}, {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}])
    );
    assert_eq!(current(&request)["content"], "what is this?");

    let error = translate_with(
        messages(json!([{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}])),
        "m",
        None,
    )
    .unwrap_err();
    assert_eq!(error, "unsupported: messages[0].content[0]: image URLs (Kiro takes inline base64 images only)");
}

#[test]
fn profile_arn_and_inference_config_only_when_they_apply() {
    let plain = translate(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}));
    assert!(plain.get("profileArn").is_none() && plain.get("inferenceConfig").is_none(), "{plain}");
    let social = translate_with(
        json!({"model": "m", "max_tokens": 512, "temperature": 0.3, "messages": [{"role": "user", "content": "Hi"}]}),
        "m",
        Some("arn:aws:codewhisperer:us-east-1:1:profile/P"),
    )
    .unwrap();
    assert_eq!(social["profileArn"], "arn:aws:codewhisperer:us-east-1:1:profile/P");
    assert_eq!(social["inferenceConfig"], json!({"maxTokens": 512, "temperature": 0.3}));
    let only_max = translate(messages(json!([{"role": "user", "content": "Hi"}])));
    assert_eq!(only_max["inferenceConfig"], json!({"maxTokens": 100}));
}

#[test]
fn earlier_thinking_is_not_sent() {
    let request = translate(messages(json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "a"}]},
        {"role": "user", "content": "q2"},
    ])));
    assert_eq!(history(&request)[1], json!({"assistantResponseMessage": {"content": "a"}}));
}
