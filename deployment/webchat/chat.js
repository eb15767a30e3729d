/* Starts Web Chat on the agency's page: asks the bot for a Direct Line token (the secret stays on the
   bot's server), with the manage link's token when the page was opened from an e-mail (#manage=…).
   Configuration: data-bot (the bot's address) and data-directline-domain (the regional Direct Line). */
(function () {
  'use strict';
  var script = document.currentScript;
  var bot = script.getAttribute('data-bot').replace(/\/$/, '');
  var domain = script.getAttribute('data-directline-domain');
  var status = document.getElementById('status');
  var locale = navigator.language || document.documentElement.lang;
  var language = locale.slice(0, 2).toLowerCase();
  // The page speaks the chat's language (screen readers, translation tools), not the header's first one.
  document.documentElement.lang = locale;
  // The manage entry's button, in the visitor's language where the page knows it.
  var MY_APPOINTMENTS = { fr: 'Mes rendez-vous', nl: 'Mijn afspraken', de: 'Meine Termine', en: 'My appointments' };
  var myAppointments = document.getElementById('my-appointments');
  if (MY_APPOINTMENTS[language]) { myAppointments.textContent = MY_APPOINTMENTS[language]; }

  // The manage link's token travels in the fragment (never sent to any server by the browser); take it
  // and remove it from the address at once, so it stays neither in the history nor on screen.
  var match = /(?:^#|&)manage=([A-Za-z0-9_\-.]+)/.exec(window.location.hash);
  var manageToken = match ? match[1] : null;
  if (manageToken) {
    history.replaceState(null, '', window.location.pathname + window.location.search);
    document.getElementById('manage-note').hidden = false;
  }

  function say(text) { status.textContent = text; }

  var body = manageToken ? { manage_token: manageToken } : {};
  fetch(bot + '/api/directline/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit'
  })
    .then(function (response) {
      return response.json().then(function (answer) { return { status: response.status, answer: answer }; });
    })
    .then(function (result) {
      if (result.status === 401) {
        // An expired or revoked link: the chat still opens, without access to the appointments.
        say('Ce lien a expiré · Deze link is verlopen · Dieser Link ist abgelaufen');
        return fetch(bot + '/api/directline/token', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                      body: '{}', credentials: 'omit' })
          .then(function (response) { return response.json(); });
      }
      if (result.status !== 200) { throw new Error(result.answer.message || 'token'); }
      return result.answer;
    })
    .then(function (answer) {
      var store = window.WebChat.createStore({}, function () {
        return function (next) {
          return function (action) {
            if (action.type === 'DIRECT_LINE/CONNECT_FULFILLED') {
              myAppointments.disabled = false;
              // The bot greets on this event, in the page's language (nothing is stored for a silent visitor).
              window.setTimeout(function () {
                store.dispatch({ type: 'WEB_CHAT/SEND_EVENT',
                                 payload: { name: 'webchat/join', value: { language: locale, manage: !!manageToken } } });
              }, 0);
            }
            return next(action);
          };
        };
      });
      // The same message as the bot's own "my appointments" buttons send on the web (an Action.Submit).
      myAppointments.addEventListener('click', function () {
        store.dispatch({ type: 'WEB_CHAT/SEND_POST_BACK', payload: { value: { verb: 'menu_my_appointments' } } });
      });
      window.WebChat.renderWebChat({
        // data-websocket="false": polling instead of a WebSocket (proxies that refuse WebSockets; tests).
        directLine: window.WebChat.createDirectLine({ token: answer.token, domain: domain,
                                                      webSocket: script.getAttribute('data-websocket') !== 'false' }),
        store: store,
        locale: locale,
        // The bot takes no files from the website: no paperclip that would lead nowhere.
        styleOptions: { hideUploadButton: true }
      }, document.getElementById('webchat'));
    })
    .catch(function () {
      say('Le chat ne peut pas démarrer pour le moment · De chat kan nu niet starten · Der Chat kann gerade nicht starten');
    });
}());
