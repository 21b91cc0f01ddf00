"""The repositories: the only place SQL is written, one module per aggregate (users,
items, idempotency keys, log-in failures), statements on the mapped models.

A repository works in the session of the unit of work that made it
(app.platform.sessions), and each method says with the type of its `self` which kinds
of session it needs: reads run in any; a statement that writes needs a SingleWrite or a
Transaction; an entity loaded to be changed, and its changes, need a Transaction.
Calling a method on the wrong kind is a type error, caught before anything runs.

What only feeds a response or a check is selected column by column, as the view
declares it (app.domain.schemas): no entity is built, nothing can lazy-load.
Statements are built once, at import; values are bind parameters.
"""
