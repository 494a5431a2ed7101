"""Models and providers: the Model/Provider abstraction, router, response cache, cost, embedders."""
