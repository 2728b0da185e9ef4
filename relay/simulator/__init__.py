"""The MC5 upstream simulator: a faithful local stand-in for `/services/rest/user/allMessages`.

Modules, from the inside out:
    statuses     the MC5 `status` codes
    config       SimulatorConfig: page size, cap, `since` semantics, one switch per quirk
    objectid     Mongo ObjectIds whose first 4 bytes are the message's second
    messages     NewMessage (what to add) and StoredMessage (what is kept)
    collection   one account's capped, time-ordered collection (bisect for `since`)
    accounts     accounts, their login status and own phone number
    samples      realistic texts and phone numbers for generated messages
    faults       errors queued for the next calls (HTTP 5xx, HTML, bad JSON, slow, status, reset)
    simulator    Simulator: the in-memory upstream that ties the above together
    params       reading and validating the call's parameters
    page         the MC5 JSON for a page, quirks applied
    traffic      a background generator adding messages at a steady rate
    control      the `/_sim/...` control routes, with control_input parsing their bodies
    all_messages the upstream route itself, including the connection reset fault
    app          create_app() and serve()
"""
