// The API reference page (/api/v1/docs): Swagger UI on the app's own OpenAPI document.
// A file of its own, not an inline script, so the page runs under `script-src 'self'`.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    // No call to the public validator service: the page loads nothing from elsewhere.
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
    defaultModelsExpandDepth: 0,
    docExpansion: "list"
  });
}());
